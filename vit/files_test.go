package vit

import (
	"bytes"
	"image"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"vitflow/internal/safefile/safefiletest"
)

func TestLoadRejectsWhatIsNotARegularFile(t *testing.T) {
	cfg := mustPreset(t, "mnist-tiny")
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	safefiletest.Mkfifo(t, fifo)
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink("fifo", link))
	weights := func(path string) error { _, _, err := LoadWeights(path, cfg); return err }
	img := func(path string) error { _, err := LoadImage(path, cfg); return err }
	tests := []struct {
		name, path, want string
		load             func(string) error
	}{
		{"weights from a named pipe", fifo, "load weights: open " + fifo + ": not a regular file but a named pipe", weights},
		{"weights through a symlink to a pipe", link, "load weights: open " + link + ": not a regular file but a named pipe", weights},
		{"weights from a directory", dir, "not a regular file but a directory", weights},
		{"image from a named pipe", fifo, "load image: open " + fifo + ": not a regular file but a named pipe", img},
		{"image through a symlink to a pipe", link, "load image: open " + link + ": not a regular file but a named pipe", img},
		{"image from a directory", dir, "not a regular file but a directory", img},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := safefiletest.Within(t, func() error { return tt.load(tt.path) })
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), tt.path)
		})
	}

	// A symlink to a regular file is an ordinary input.
	require.NoError(t, SaveWeights(filepath.Join(dir, "w.safetensors"), RandomWeights(cfg, 1), LayoutTimm, nil))
	require.NoError(t, os.Symlink("w.safetensors", filepath.Join(dir, "w-link")))
	_, _, err := LoadWeights(filepath.Join(dir, "w-link"), cfg)
	assert.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "i.png"), encodePNG(t, image.NewGray(image.Rect(0, 0, 28, 28))), 0o644))
	require.NoError(t, os.Symlink("i.png", filepath.Join(dir, "i-link")))
	_, err = LoadImage(filepath.Join(dir, "i-link"), cfg)
	assert.NoError(t, err)
}

func TestSaveWeightsNeverReplacesWhatIsNotARegularFile(t *testing.T) {
	cfg := mustPreset(t, "mnist-tiny")
	w := RandomWeights(cfg, 7)
	var want bytes.Buffer
	require.NoError(t, WriteSafetensors(&want, checkpointTensorsOf(w), map[string]string{"format": "pt"}))

	t.Run("symlink to a regular file", func(t *testing.T) {
		dir := t.TempDir()
		target := filepath.Join(dir, "target.safetensors")
		require.NoError(t, os.WriteFile(target, []byte("old"), 0o600))
		link := filepath.Join(dir, "link.safetensors")
		require.NoError(t, os.Symlink("target.safetensors", link))
		require.NoError(t, SaveWeights(link, w, LayoutTimm, nil))
		to, err := os.Readlink(link)
		require.NoError(t, err, "still a symlink")
		assert.Equal(t, "target.safetensors", to)
		got, err := os.ReadFile(target)
		require.NoError(t, err)
		assert.Equal(t, want.Bytes(), got, "the checkpoint went to the link's target")
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		assert.Len(t, entries, 2, "no temporary file left")
	})
	t.Run("named pipe with a reader", func(t *testing.T) {
		dir := t.TempDir()
		fifo := filepath.Join(dir, "fifo")
		safefiletest.Mkfifo(t, fifo)
		got := safefiletest.ReadFIFO(fifo)
		require.NoError(t, safefiletest.Within(t, func() error { return SaveWeights(fifo, w, LayoutTimm, nil) }))
		assert.Equal(t, want.Bytes(), safefiletest.Receive(t, got), "the reader got the checkpoint")
		st, err := os.Lstat(fifo)
		require.NoError(t, err)
		assert.Equal(t, fs.ModeNamedPipe, st.Mode().Type(), "still a named pipe")
	})
}

// checkpointTensorsOf is what SaveWeights writes for w in the timm layout.
func checkpointTensorsOf(w *Weights) []Tensor {
	var tensors []Tensor
	for _, ft := range checkpointTensors(w, LayoutTimm) {
		tensors = append(tensors, Tensor{Name: ft.name, Shape: ft.shape, Data: ft.gather()})
	}
	return tensors
}
