package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"vitflow/internal/safefile/safefiletest"
	"vitflow/vit"
)

// TestOutputFiles: the model and the checkpoint a command writes go through
// a symlink or a named pipe at their path, never replacing it; an input
// that is a named pipe fails at once instead of blocking.
func TestOutputFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("trains and evaluates on MNIST")
	}
	cfg, err := vit.Preset("mnist-tiny")
	require.NoError(t, err)
	dense := filepath.Join(t.TempDir(), "dense.safetensors")
	require.NoError(t, vit.SaveWeights(dense, vit.RandomWeights(cfg, 5), vit.LayoutTimm, nil))
	loads := func(t *testing.T, path string) {
		_, _, err := vit.LoadWeights(path, cfg)
		assert.NoError(t, err, "a model was written to %s", path)
	}
	symlink := func(t *testing.T, dir, name, to string) string {
		require.NoError(t, os.WriteFile(filepath.Join(dir, to), []byte("old"), 0o644))
		path := filepath.Join(dir, name)
		require.NoError(t, os.Symlink(to, path))
		return path
	}
	stillSymlink := func(t *testing.T, path, to string) {
		got, err := os.Readlink(path)
		require.NoError(t, err, "%s is still a symlink", path)
		assert.Equal(t, to, got)
	}
	tests := []struct {
		name string
		// setup prepares dir and returns the command line.
		setup func(t *testing.T, dir string) []string
		want  string // a substring of the error; "" for success
		check func(t *testing.T, dir string)
	}{
		{
			name: "dense model and checkpoint through symlinks",
			setup: func(t *testing.T, dir string) []string {
				return []string{"dense", "-train-images", "64", "-test-images", "50", "-epochs", "1",
					"-out", symlink(t, dir, "out.safetensors", "real.safetensors"), "-checkpoint", symlink(t, dir, "run.ckpt", "real.ckpt")}
			},
			check: func(t *testing.T, dir string) {
				stillSymlink(t, filepath.Join(dir, "out.safetensors"), "real.safetensors")
				stillSymlink(t, filepath.Join(dir, "run.ckpt"), "real.ckpt")
				loads(t, filepath.Join(dir, "real.safetensors"))
				ck, err := os.ReadFile(filepath.Join(dir, "real.ckpt"))
				require.NoError(t, err)
				assert.Greater(t, len(ck), 100_000, "the checkpoint went to the link's target")
				entries, err := os.ReadDir(dir)
				require.NoError(t, err)
				assert.Len(t, entries, 4, "no temporary file left")
			},
		},
		{
			name: "one-shot model to a named pipe with a reader",
			setup: func(t *testing.T, dir string) []string {
				fifo := filepath.Join(dir, "fifo")
				safefiletest.Mkfifo(t, fifo)
				got := safefiletest.ReadFIFO(fifo)
				t.Cleanup(func() {
					b := safefiletest.Receive(t, got)
					_, _, err := vit.ReadWeights(bytes.NewReader(b), int64(len(b)), "pipe", cfg)
					assert.NoError(t, err, "the reader got a model")
				})
				return []string{"oneshot", "-from", dense, "-test-images", "50", "-out", fifo}
			},
			check: func(t *testing.T, dir string) {
				st, err := os.Lstat(filepath.Join(dir, "fifo"))
				require.NoError(t, err)
				assert.Equal(t, fs.ModeNamedPipe, st.Mode().Type(), "still a named pipe")
			},
		},
		{
			name: "from a named pipe",
			setup: func(t *testing.T, dir string) []string {
				safefiletest.Mkfifo(t, filepath.Join(dir, "fifo"))
				return []string{"oneshot", "-from", filepath.Join(dir, "fifo"), "-out", filepath.Join(dir, "out.safetensors")}
			},
			want: "load weights: open DIR/fifo: not a regular file but a named pipe",
		},
		{
			name: "resume from a named pipe",
			setup: func(t *testing.T, dir string) []string {
				safefiletest.Mkfifo(t, filepath.Join(dir, "fifo"))
				return []string{"dense", "-train-images", "64", "-test-images", "50", "-epochs", "1", "-resume",
					"-checkpoint", filepath.Join(dir, "fifo"), "-out", filepath.Join(dir, "out.safetensors")}
			},
			want: "resume: open DIR/fifo: not a regular file but a named pipe",
		},
		{
			name: "evaluate a named pipe",
			setup: func(t *testing.T, dir string) []string {
				safefiletest.Mkfifo(t, filepath.Join(dir, "fifo"))
				return []string{"eval", "-model", filepath.Join(dir, "fifo")}
			},
			want: "load weights: open DIR/fifo: not a regular file but a named pipe",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			args := tt.setup(t, dir)
			var stdout, stderr bytes.Buffer
			err := safefiletest.Within(t, func() error { return run(args, &stdout, &stderr) })
			if tt.want == "" {
				require.NoError(t, err, stderr.String())
				tt.check(t, dir)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), strings.ReplaceAll(tt.want, "DIR", dir))
			assert.NotContains(t, err.Error(), "\n")
			entries, rerr := os.ReadDir(dir)
			require.NoError(t, rerr)
			assert.Len(t, entries, 1, "nothing written beside the pipe")
		})
	}
}
