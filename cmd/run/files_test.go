package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"vitflow/internal/safefile/safefiletest"
)

// result is what one run of the command did.
type result struct {
	code           int
	stdout, stderr string
}

// invokeWithin runs the command, failing the test if it blocks.
func invokeWithin(t *testing.T, args ...string) result {
	t.Helper()
	return safefiletest.Within(t, func() result {
		code, stdout, stderr := invoke(args...)
		return result{code, stdout, stderr}
	})
}

// assertOneLineError checks a failed run: its status, a one-line message
// with want in it, no stack trace and nothing on stdout.
func assertOneLineError(t *testing.T, r result, code int, want string) {
	t.Helper()
	assert.Equal(t, code, r.code, "stderr: %s", r.stderr)
	assert.Empty(t, r.stdout)
	assert.True(t, strings.HasPrefix(r.stderr, "run: "), "stderr %q", r.stderr)
	assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line: %q", r.stderr)
	assert.Contains(t, r.stderr, want)
	assert.NotContains(t, r.stderr, "goroutine")
}

func assertSymlink(t *testing.T, path, to string) {
	t.Helper()
	got, err := os.Readlink(path)
	require.NoError(t, err, "%s is still a symlink", path)
	assert.Equal(t, to, got)
}

func assertFIFO(t *testing.T, path string) {
	t.Helper()
	st, err := os.Lstat(path)
	require.NoError(t, err)
	assert.Equal(t, fs.ModeNamedPipe, st.Mode().Type(), "%s is still a named pipe", path)
}

func assertContent(t *testing.T, path, want string) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, want, string(b))
}

// isSVG checks that b is the chart.
func isSVG(t *testing.T, b []byte) {
	t.Helper()
	assert.True(t, strings.HasPrefix(string(b), "<svg") || strings.HasPrefix(string(b), "<?xml"), "an SVG: %.40q", b)
	assert.Contains(t, string(b), "</svg>")
}

// TestOutputFiles writes every file output (-svg, -trace, and -html of a
// run and of a comparison) to paths of every kind: a new file or an
// existing one (replaced whole, no temporary file left), a symlink to a
// file, to a named pipe or to /dev/null, or a named pipe (written through),
// a missing, read-only or directory path (one-line errors, nothing at the
// path replaced).
func TestOutputFiles(t *testing.T) {
	run := []string{"-topology", "small", "-image", pngFile(t)}
	a := jsonReport(t, t.TempDir(), "a.json", run...)
	outputs := []struct {
		name, flag string
		args       []string // the command, before the flag
		valid      func(t *testing.T, b []byte)
	}{
		{"svg", "-svg", run, isSVG},
		{"trace", "-trace", run, func(t *testing.T, b []byte) { assert.True(t, json.Valid(b), "a JSON trace: %.40q", b) }},
		{"html", "-html", run, isHTML},
		{"compare html", "-html", []string{"-compare", a, a}, isHTML},
	}
	tests := []struct {
		name string
		// setup prepares dir and returns the output path; valid checks
		// what reaches a pipe.
		setup func(t *testing.T, dir string, valid func(*testing.T, []byte)) string
		code  int
		msg   string // in the error, after the flag, for a failed run
		// check verifies dir after the run; valid checks the output.
		check func(t *testing.T, dir string, valid func(*testing.T, []byte))
	}{
		{
			name:  "a new file",
			setup: func(t *testing.T, dir string, _ func(*testing.T, []byte)) string { return filepath.Join(dir, "out") },
			check: func(t *testing.T, dir string, valid func(*testing.T, []byte)) {
				valid(t, readBytes(t, filepath.Join(dir, "out")))
				assertEntries(t, dir, "out")
			},
		},
		{
			name: "an existing file",
			setup: func(t *testing.T, dir string, _ func(*testing.T, []byte)) string {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "out"), []byte("old"), 0o600))
				return filepath.Join(dir, "out")
			},
			check: func(t *testing.T, dir string, valid func(*testing.T, []byte)) {
				valid(t, readBytes(t, filepath.Join(dir, "out")))
				assertEntries(t, dir, "out") // no temporary file left
			},
		},
		{
			name: "a symlink to a regular file",
			setup: func(t *testing.T, dir string, _ func(*testing.T, []byte)) string {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "out"), []byte("old"), 0o644))
				require.NoError(t, os.Symlink("out", filepath.Join(dir, "link")))
				return filepath.Join(dir, "link")
			},
			check: func(t *testing.T, dir string, valid func(*testing.T, []byte)) {
				assertSymlink(t, filepath.Join(dir, "link"), "out")
				valid(t, readBytes(t, filepath.Join(dir, "out")))
				assertEntries(t, dir, "link", "out")
			},
		},
		{
			name: "a named pipe with a reader",
			setup: func(t *testing.T, dir string, valid func(*testing.T, []byte)) string {
				fifo := filepath.Join(dir, "fifo")
				safefiletest.Mkfifo(t, fifo)
				got := safefiletest.ReadFIFO(fifo)
				t.Cleanup(func() { valid(t, safefiletest.Receive(t, got)) })
				return fifo
			},
			check: func(t *testing.T, dir string, _ func(*testing.T, []byte)) {
				assertFIFO(t, filepath.Join(dir, "fifo"))
				assertEntries(t, dir, "fifo")
			},
		},
		{
			name: "a symlink to a named pipe with a reader",
			setup: func(t *testing.T, dir string, valid func(*testing.T, []byte)) string {
				fifo := filepath.Join(dir, "fifo")
				safefiletest.Mkfifo(t, fifo)
				require.NoError(t, os.Symlink("fifo", filepath.Join(dir, "link")))
				got := safefiletest.ReadFIFO(fifo)
				t.Cleanup(func() { valid(t, safefiletest.Receive(t, got)) })
				return filepath.Join(dir, "link")
			},
			check: func(t *testing.T, dir string, _ func(*testing.T, []byte)) {
				assertSymlink(t, filepath.Join(dir, "link"), "fifo")
				assertFIFO(t, filepath.Join(dir, "fifo"))
				assertEntries(t, dir, "fifo", "link")
			},
		},
		{
			name:  "a symlink to /dev/null",
			setup: func(t *testing.T, dir string, _ func(*testing.T, []byte)) string { return linkToDevNull(t, dir) },
			check: func(t *testing.T, dir string, _ func(*testing.T, []byte)) {
				assertLinkToDevNull(t, dir)
				assertEntries(t, dir, "null")
			},
		},
		{
			name: "a missing directory",
			setup: func(t *testing.T, dir string, _ func(*testing.T, []byte)) string {
				return filepath.Join(dir, "no", "out")
			},
			code:  1,
			msg:   ": create DIR/no/out: no such file or directory",
			check: func(t *testing.T, dir string, _ func(*testing.T, []byte)) { assertEntries(t, dir) },
		},
		{
			name: "a read-only directory",
			setup: func(t *testing.T, dir string, _ func(*testing.T, []byte)) string {
				if os.Geteuid() == 0 {
					t.Skip("root writes into read-only directories")
				}
				ro := filepath.Join(dir, "ro")
				require.NoError(t, os.Mkdir(ro, 0o755))
				require.NoError(t, os.WriteFile(filepath.Join(ro, "out"), []byte("old"), 0o644))
				require.NoError(t, os.Chmod(ro, 0o555))
				t.Cleanup(func() { os.Chmod(ro, 0o755) })
				return filepath.Join(ro, "out")
			},
			code: 1,
			msg:  "permission denied",
			check: func(t *testing.T, dir string, _ func(*testing.T, []byte)) {
				assertContent(t, filepath.Join(dir, "ro", "out"), "old")
			},
		},
		{
			name: "a directory",
			setup: func(t *testing.T, dir string, _ func(*testing.T, []byte)) string {
				require.NoError(t, os.Mkdir(filepath.Join(dir, "d"), 0o755))
				return filepath.Join(dir, "d")
			},
			code: 1,
			msg:  ": write DIR/d: is a directory",
			check: func(t *testing.T, dir string, _ func(*testing.T, []byte)) {
				assertEntries(t, dir, "d")
				assertEntries(t, filepath.Join(dir, "d"))
			},
		},
	}
	for _, out := range outputs {
		for _, tt := range tests {
			t.Run(out.name+"/"+tt.name, func(t *testing.T) {
				dir := t.TempDir()
				path := tt.setup(t, dir, out.valid)
				r := invokeWithin(t, append(slices.Clone(out.args), out.flag, path)...)
				if tt.code == 0 {
					assert.Equal(t, 0, r.code, "stderr: %s", r.stderr)
					assert.Empty(t, r.stderr)
				} else {
					assertOneLineError(t, r, tt.code, "run: "+out.flag+": ")
					assert.Contains(t, r.stderr, strings.ReplaceAll(tt.msg, "DIR", dir))
				}
				tt.check(t, dir, out.valid)
			})
		}
	}
}

// readBytes returns the content of path.
func readBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// linkToDevNull makes dir/null, a symlink to /dev/null, and returns its
// path. Only the link is ever given to the command, never /dev/null itself,
// so a regression that replaces the output replaces the link in dir and
// leaves the device alone.
func linkToDevNull(t *testing.T, dir string) string {
	t.Helper()
	assertDevNull(t)
	link := filepath.Join(dir, "null")
	require.NoError(t, os.Symlink("/dev/null", link))
	return link
}

// assertLinkToDevNull checks that dir/null is still a symlink to /dev/null
// and /dev/null still a character device.
func assertLinkToDevNull(t *testing.T, dir string) {
	t.Helper()
	link := filepath.Join(dir, "null")
	st, err := os.Lstat(link)
	require.NoError(t, err)
	assert.Equal(t, fs.ModeSymlink, st.Mode().Type(), "%s is still a symlink", link)
	assertSymlink(t, link, "/dev/null")
	assertDevNull(t)
}

// assertDevNull checks that /dev/null is a character device.
func assertDevNull(t *testing.T) {
	t.Helper()
	st, err := os.Stat("/dev/null")
	require.NoError(t, err)
	require.NotZero(t, st.Mode()&fs.ModeCharDevice, "/dev/null is a character device, not %v", st.Mode())
}

// assertEntries checks that dir holds exactly names: nothing was written
// and no temporary file was left.
func assertEntries(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	assert.ElementsMatch(t, names, got)
}

// TestCollidingPaths refuses an output that is the same file as another
// output or as an input, however the path is spelt.
func TestCollidingPaths(t *testing.T) {
	dir := t.TempDir()
	img := pngFile(t)
	imgBytes, err := os.ReadFile(img)
	require.NoError(t, err)
	weights := savedWeights(t, "mnist-tiny", nil)
	require.NoError(t, os.Symlink(weights, filepath.Join(dir, "weights-link")))
	require.NoError(t, os.Symlink(".", filepath.Join(dir, "here")))
	out := filepath.Join(dir, "out")
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"trace and svg", []string{"-trace", out, "-svg", out},
			`-svg "DIR/out" is the same file as -trace "DIR/out"`},
		{"trace and svg spelt differently", []string{"-trace", out, "-svg", filepath.Join(dir, "here", ".", "out")},
			`-svg "DIR/here/out" is the same file as -trace "DIR/out"`},
		{"svg over the image", []string{"-image", img, "-svg", img},
			`-svg "` + img + `" is the same file as -image "` + img + `"`},
		{"trace over the weights through a symlink", []string{"-weights", weights, "-trace", filepath.Join(dir, "weights-link")},
			`-trace "DIR/weights-link" is the same file as -weights "` + weights + `"`},
		{"svg over the topology file", []string{"-topology", filepath.Join(dir, "card.toml"), "-svg", filepath.Join(dir, "card.toml")},
			`-svg "DIR/card.toml" is the same file as -topology "DIR/card.toml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := invokeWithin(t, tt.args...)
			assertOneLineError(t, r, 2, strings.ReplaceAll(tt.msg, "DIR", dir))
			assertContent(t, img, string(imgBytes))
			assertEntries(t, dir, "weights-link", "here")
		})
	}
}

// TestInputsThatAreNotRegularFiles: a named pipe (or a directory) given as
// an input fails at once, naming the flag and the path, before anything is
// opened or written.
func TestInputsThatAreNotRegularFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	safefiletest.Mkfifo(t, fifo)
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink("fifo", link))
	sub := filepath.Join(dir, "sub")
	require.NoError(t, os.Mkdir(sub, 0o755))
	svg := filepath.Join(dir, "chart.svg")
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"weights from a named pipe", []string{"-weights", fifo}, "-weights: open " + fifo + ": not a regular file but a named pipe"},
		{"weights through a symlink to a pipe", []string{"-weights", link}, "-weights: open " + link + ": not a regular file but a named pipe"},
		{"weights from a directory", []string{"-weights", sub}, "-weights: open " + sub + ": not a regular file but a directory"},
		{"topology from a named pipe", []string{"-topology", fifo}, "-topology: open " + fifo + ": not a regular file but a named pipe"},
		{"topology through a symlink to a pipe", []string{"-topology", link}, "-topology: open " + link + ": not a regular file but a named pipe"},
		{"image from a named pipe", []string{"-image", pngFile(t), "-image", fifo}, "-image: open " + fifo + ": not a regular file but a named pipe"},
		{"image through a symlink to a pipe", []string{"-image", link}, "-image: open " + link + ": not a regular file but a named pipe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := invokeWithin(t, append(tt.args, "-svg", svg)...)
			assertOneLineError(t, r, 1, tt.msg)
			assertFIFO(t, fifo)
			assertEntries(t, dir, "fifo", "link", "sub")
		})
	}
}
