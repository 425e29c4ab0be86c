package main

import (
	"bytes"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"vitflow/internal/safefile/safefiletest"
)

// isHTML checks that b is a whole report page.
func isHTML(t *testing.T, b []byte) {
	t.Helper()
	assert.True(t, bytes.HasPrefix(b, []byte("<!DOCTYPE html>")), "an HTML page: %.40q", b)
	assert.True(t, bytes.HasSuffix(b, []byte("</html>\n")), "the whole page")
	assert.Contains(t, string(b), "<svg")
}

// TestHTMLOutputFiles writes -html, of a run and of a comparison, to paths
// of every kind: new, an existing file (replaced whole), a symlink to a file
// or to /dev/null or a named pipe (written through), a missing folder or a
// directory (one-line errors, nothing written).
func TestHTMLOutputFiles(t *testing.T) {
	reports := t.TempDir()
	a := jsonReport(t, reports, "a.json", "-topology", "small")
	commands := map[string][]string{
		"run":     {"-topology", "small"},
		"compare": {"-compare", a, a},
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the -html path
		code  int
		msg   string
		check func(t *testing.T, dir string)
	}{
		{
			name:  "a new file",
			setup: func(t *testing.T, dir string) string { return filepath.Join(dir, "r.html") },
			check: func(t *testing.T, dir string) {
				isHTML(t, []byte(readFile(t, filepath.Join(dir, "r.html"))))
				assertEntries(t, dir, "r.html")
			},
		},
		{
			name: "an existing file",
			setup: func(t *testing.T, dir string) string {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "r.html"), []byte("old"), 0o600))
				return filepath.Join(dir, "r.html")
			},
			check: func(t *testing.T, dir string) {
				isHTML(t, []byte(readFile(t, filepath.Join(dir, "r.html"))))
				assertEntries(t, dir, "r.html") // no temporary file left
			},
		},
		{
			name: "a symlink to a file",
			setup: func(t *testing.T, dir string) string {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "r.html"), []byte("old"), 0o644))
				require.NoError(t, os.Symlink("r.html", filepath.Join(dir, "link.html")))
				return filepath.Join(dir, "link.html")
			},
			check: func(t *testing.T, dir string) {
				assertSymlink(t, filepath.Join(dir, "link.html"), "r.html")
				isHTML(t, []byte(readFile(t, filepath.Join(dir, "r.html"))))
				assertEntries(t, dir, "r.html", "link.html")
			},
		},
		{
			name:  "a symlink to /dev/null",
			setup: func(t *testing.T, dir string) string { return linkToDevNull(t, dir) },
			check: func(t *testing.T, dir string) {
				assertLinkToDevNull(t, dir)
				assertEntries(t, dir, "null")
			},
		},
		{
			name: "a named pipe with a reader",
			setup: func(t *testing.T, dir string) string {
				fifo := filepath.Join(dir, "fifo")
				safefiletest.Mkfifo(t, fifo)
				got := safefiletest.ReadFIFO(fifo)
				t.Cleanup(func() { isHTML(t, safefiletest.Receive(t, got)) })
				return fifo
			},
			check: func(t *testing.T, dir string) {
				assertFIFO(t, filepath.Join(dir, "fifo"))
				assertEntries(t, dir, "fifo")
			},
		},
		{
			name:  "a missing folder",
			setup: func(t *testing.T, dir string) string { return filepath.Join(dir, "no", "r.html") },
			code:  1,
			msg:   "-html: create DIR/no/r.html: no such file or directory",
			check: func(t *testing.T, dir string) { assertEntries(t, dir) },
		},
		{
			name: "a directory",
			setup: func(t *testing.T, dir string) string {
				require.NoError(t, os.Mkdir(filepath.Join(dir, "d"), 0o755))
				return filepath.Join(dir, "d")
			},
			code: 1,
			msg:  "-html: write DIR/d: is a directory",
			check: func(t *testing.T, dir string) {
				assertEntries(t, dir, "d")
				assertEntries(t, filepath.Join(dir, "d"))
			},
		},
	}
	for cmd, args := range commands {
		for _, tt := range tests {
			t.Run(cmd+"/"+tt.name, func(t *testing.T) {
				dir := t.TempDir()
				r := invokeWithin(t, append(args, "-html", tt.setup(t, dir))...)
				if tt.code == 0 {
					assert.Equal(t, 0, r.code, "stderr: %s", r.stderr)
					assert.Empty(t, r.stderr)
				} else {
					assertOneLineError(t, r, tt.code, strings.ReplaceAll(tt.msg, "DIR", dir))
				}
				tt.check(t, dir)
			})
		}
	}
}

// TestHTMLIsDeterministic writes the report and a comparison under
// GOMAXPROCS 1 and 2: the pages are the same byte for byte, so that two
// runs can be told apart by diff.
func TestHTMLIsDeterministic(t *testing.T) {
	defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(0))
	dir := t.TempDir()
	a := jsonReport(t, dir, "a.json", "-topology", "small", "-images", "20")
	b := jsonReport(t, dir, "b.json", "-topology", "small", "-images", "20", "-balance", "static")
	for name, args := range map[string][]string{
		"run":     {"-topology", "small", "-images", "20"},
		"compare": {"-compare", a, b},
	} {
		t.Run(name, func(t *testing.T) {
			var pages []string
			for _, procs := range []int{1, 2} {
				goruntime.GOMAXPROCS(procs)
				path := filepath.Join(t.TempDir(), "page.html")
				code, _, stderr := invoke(append(args, "-html", path)...)
				require.Equal(t, 0, code, stderr)
				pages = append(pages, readFile(t, path))
			}
			assert.True(t, pages[0] == pages[1], "the same page under GOMAXPROCS 1 and 2")
		})
	}
}
