package safefile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"vitflow/internal/safefile/safefiletest"
)

// names lists the entries of dir, to show that no temporary file is left.
func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func writeString(s string) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := io.WriteString(w, s)
		return err
	}
}

func TestWrite(t *testing.T) {
	tests := []struct {
		name string
		// setup prepares dir and returns the path to write.
		setup   func(t *testing.T, dir string) string
		wantErr string
		// check verifies dir after the write.
		check func(t *testing.T, dir, path string)
	}{
		{
			name:  "absent",
			setup: func(t *testing.T, dir string) string { return filepath.Join(dir, "out") },
			check: func(t *testing.T, dir, path string) {
				b, err := os.ReadFile(path)
				require.NoError(t, err)
				assert.Equal(t, "new", string(b))
				st, err := os.Lstat(path)
				require.NoError(t, err)
				assert.Equal(t, Mode, st.Mode())
				assert.Equal(t, []string{"out"}, names(t, dir))
			},
		},
		{
			name: "regular file is replaced atomically",
			setup: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "out")
				require.NoError(t, os.WriteFile(path, []byte("old content"), 0o600))
				require.NoError(t, os.Link(path, filepath.Join(dir, "old")))
				return path
			},
			check: func(t *testing.T, dir, path string) {
				b, err := os.ReadFile(path)
				require.NoError(t, err)
				assert.Equal(t, "new", string(b))
				st, err := os.Lstat(path)
				require.NoError(t, err)
				assert.Equal(t, Mode, st.Mode())
				// A new file was renamed into place: the old one is untouched behind its other link.
				b, err = os.ReadFile(filepath.Join(dir, "old"))
				require.NoError(t, err)
				assert.Equal(t, "old content", string(b))
				assert.Equal(t, []string{"old", "out"}, names(t, dir))
			},
		},
		{
			name: "symlink to a regular file is written through",
			setup: func(t *testing.T, dir string) string {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "target"), []byte("old content"), 0o600))
				path := filepath.Join(dir, "link")
				require.NoError(t, os.Symlink("target", path))
				return path
			},
			check: func(t *testing.T, dir, path string) {
				to, err := os.Readlink(path)
				require.NoError(t, err, "still a symlink")
				assert.Equal(t, "target", to)
				b, err := os.ReadFile(filepath.Join(dir, "target"))
				require.NoError(t, err)
				assert.Equal(t, "new", string(b))
				st, err := os.Stat(path)
				require.NoError(t, err)
				assert.Equal(t, fs.FileMode(0o600), st.Mode(), "the target keeps its mode")
				assert.Equal(t, []string{"link", "target"}, names(t, dir))
			},
		},
		{
			name:    "dangling symlink",
			setup:   func(t *testing.T, dir string) string { return symlink(t, dir, "absent") },
			wantErr: "no such file or directory",
			check: func(t *testing.T, dir, path string) {
				to, err := os.Readlink(path)
				require.NoError(t, err, "still a symlink")
				assert.Equal(t, "absent", to)
				assert.Equal(t, []string{"link"}, names(t, dir), "nothing created behind the link")
			},
		},
		{
			name: "directory",
			setup: func(t *testing.T, dir string) string {
				path := filepath.Join(dir, "sub")
				require.NoError(t, os.Mkdir(path, 0o755))
				return path
			},
			wantErr: "is a directory",
			check: func(t *testing.T, dir, path string) {
				st, err := os.Lstat(path)
				require.NoError(t, err)
				assert.True(t, st.IsDir())
				assert.Equal(t, []string{"sub"}, names(t, dir))
			},
		},
		{
			name: "symlink to a directory",
			setup: func(t *testing.T, dir string) string {
				require.NoError(t, os.Mkdir(filepath.Join(dir, "sub"), 0o755))
				return symlink(t, dir, "sub")
			},
			wantErr: "is a directory",
			check: func(t *testing.T, dir, path string) {
				_, err := os.Readlink(path)
				require.NoError(t, err, "still a symlink")
				assert.Equal(t, []string{"link", "sub"}, names(t, dir))
			},
		},
		{
			name:    "missing directory",
			setup:   func(t *testing.T, dir string) string { return filepath.Join(dir, "missing", "out") },
			wantErr: "missing/out: no such file or directory",
			check: func(t *testing.T, dir, path string) {
				assert.Empty(t, names(t, dir))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := tt.setup(t, dir)
			err := Write(path, writeString("new"))
			if tt.wantErr == "" {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Contains(t, err.Error(), path, "the error names the path asked for")
				assert.NotContains(t, err.Error(), ".tmp")
			}
			tt.check(t, dir, path)
		})
	}
}

// symlink makes dir/link point at to and returns its path.
func symlink(t *testing.T, dir, to string) string {
	t.Helper()
	path := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(to, path))
	return path
}

func TestWriteNamedPipe(t *testing.T) {
	for _, viaLink := range []bool{false, true} {
		name := map[bool]string{false: "pipe", true: "symlink to a pipe"}[viaLink]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			fifo := filepath.Join(dir, "fifo")
			safefiletest.Mkfifo(t, fifo)
			path := fifo
			if viaLink {
				path = symlink(t, dir, "fifo")
			}
			got := safefiletest.ReadFIFO(fifo)
			require.NoError(t, safefiletest.Within(t, func() error { return Write(path, writeString("new")) }))
			assert.Equal(t, "new", string(safefiletest.Receive(t, got)), "the reader got the output")
			st, err := os.Lstat(fifo)
			require.NoError(t, err)
			assert.Equal(t, fs.ModeNamedPipe, st.Mode().Type(), "still a named pipe")
			if viaLink {
				st, err := os.Lstat(path)
				require.NoError(t, err)
				assert.Equal(t, fs.ModeSymlink, st.Mode().Type(), "still a symlink")
			}
		})
	}
}

func TestFailedWriteKeepsTarget(t *testing.T) {
	boom := errors.New("boom")
	fail := func(w io.Writer) error {
		io.WriteString(w, "partial")
		return boom
	}
	t.Run("regular file", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "out")
		require.NoError(t, os.WriteFile(path, []byte("old"), 0o644))
		assert.ErrorIs(t, Write(path, fail), boom)
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, "old", string(b))
		assert.Equal(t, []string{"out"}, names(t, dir), "no temporary file left")
	})
	t.Run("absent", func(t *testing.T) {
		dir := t.TempDir()
		assert.ErrorIs(t, Write(filepath.Join(dir, "out"), fail), boom)
		assert.Empty(t, names(t, dir))
	})
	t.Run("abort then commit", func(t *testing.T) {
		dir := t.TempDir()
		f, err := Create(filepath.Join(dir, "out"))
		require.NoError(t, err)
		_, err = f.Write([]byte("x"))
		require.NoError(t, err)
		f.Abort()
		assert.ErrorContains(t, f.Commit(), "commit after commit or abort")
		assert.Empty(t, names(t, dir))
	})
	t.Run("read-only directory", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root writes into read-only directories")
		}
		dir := t.TempDir()
		path := filepath.Join(dir, "out")
		require.NoError(t, os.WriteFile(path, []byte("old"), 0o644))
		require.NoError(t, os.Chmod(dir, 0o555))
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		err := Write(path, writeString("new"))
		assert.ErrorIs(t, err, fs.ErrPermission)
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, "old", string(b))
	})
}

func TestCheckRegular(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, []byte("x"), 0o644))
	fifo := filepath.Join(dir, "fifo")
	safefiletest.Mkfifo(t, fifo)
	require.NoError(t, os.Symlink("file", filepath.Join(dir, "file-link")))
	require.NoError(t, os.Symlink("fifo", filepath.Join(dir, "fifo-link")))
	tests := []struct {
		name, path, want string
	}{
		{"regular file", file, ""},
		{"symlink to a regular file", filepath.Join(dir, "file-link"), ""},
		{"named pipe", fifo, "not a regular file but a named pipe"},
		{"symlink to a named pipe", filepath.Join(dir, "fifo-link"), "not a regular file but a named pipe"},
		{"directory", dir, "not a regular file but a directory"},
		{"missing", filepath.Join(dir, "missing"), "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckRegular(tt.path)
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), tt.path)
		})
	}
}
