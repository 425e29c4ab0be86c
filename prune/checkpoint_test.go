package prune

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"vitflow/internal/safefile/safefiletest"
)

// tinyTrainer is a trainer of the small model after one epoch on 16 images.
func tinyTrainer(t testing.TB) *Trainer {
	t.Helper()
	cfg := smallConfig()
	ds := &Dataset{Images: randomImages(cfg, 16, 3), Labels: make([]int, 16)}
	opt := smallPrune()
	opt.Epochs, opt.PruneWarmupEpochs, opt.PruneCooldownEpochs = 1, 0, 0
	tr, err := NewTrainer(InitWeights(cfg, 1), InitWeights(cfg, 2), ds, opt)
	require.NoError(t, err)
	tr.TrainEpoch(nil)
	return tr
}

// tinyCheckpoint is the bytes of tinyTrainer's checkpoint.
func tinyCheckpoint(t testing.TB) []byte {
	t.Helper()
	tr := tinyTrainer(t)
	path := filepath.Join(t.TempDir(), "ck")
	require.NoError(t, tr.SaveCheckpoint(path))
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	return raw
}

func TestResumeBadFiles(t *testing.T) {
	raw := tinyCheckpoint(t)
	_, err := decodeCheckpoint(raw)
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not a training checkpoint"},
		{"truncated", raw[:len(raw)/2], "not a training checkpoint"},
		{"garbage", []byte("safetensors? no"), "not a training checkpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeCheckpoint(tc.data)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// TestCheckpointFiles checks that a checkpoint never replaces a symlink or a
// named pipe at its path, and that resuming from a pipe fails instead of blocking.
func TestCheckpointFiles(t *testing.T) {
	tr := tinyTrainer(t)
	// decodes checks that raw is tr's checkpoint.
	decodes := func(t *testing.T, raw []byte) {
		ck, err := decodeCheckpoint(raw)
		require.NoError(t, err)
		assert.Equal(t, tr.Epoch(), ck.Epoch)
	}
	t.Run("symlink to the previous checkpoint", func(t *testing.T) {
		dir := t.TempDir()
		target := filepath.Join(dir, "real.ckpt")
		require.NoError(t, os.WriteFile(target, []byte("previous"), 0o644))
		link := filepath.Join(dir, "run.ckpt")
		require.NoError(t, os.Symlink("real.ckpt", link))
		require.NoError(t, tr.SaveCheckpoint(link))
		to, err := os.Readlink(link)
		require.NoError(t, err, "still a symlink")
		assert.Equal(t, "real.ckpt", to)
		raw, err := os.ReadFile(target)
		require.NoError(t, err)
		decodes(t, raw)
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		assert.Len(t, entries, 2, "no temporary file left")
	})
	t.Run("named pipe with a reader", func(t *testing.T) {
		fifo := filepath.Join(t.TempDir(), "run.ckpt")
		safefiletest.Mkfifo(t, fifo)
		got := safefiletest.ReadFIFO(fifo)
		require.NoError(t, safefiletest.Within(t, func() error { return tr.SaveCheckpoint(fifo) }))
		decodes(t, safefiletest.Receive(t, got))
		st, err := os.Lstat(fifo)
		require.NoError(t, err)
		assert.Equal(t, fs.ModeNamedPipe, st.Mode().Type(), "still a named pipe")
	})
	t.Run("missing directory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "missing", "run.ckpt")
		err := tr.SaveCheckpoint(path)
		require.Error(t, err)
		assert.Contains(t, err.Error(), `save checkpoint "`+path+`"`)
		assert.Contains(t, err.Error(), "no such file or directory")
	})
	t.Run("resume from a named pipe", func(t *testing.T) {
		fifo := filepath.Join(t.TempDir(), "run.ckpt")
		safefiletest.Mkfifo(t, fifo)
		err := safefiletest.Within(t, func() error {
			_, err := ResumeTrainer(fifo, nil, nil, tr.opt)
			return err
		})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "resume: open "+fifo+": not a regular file but a named pipe")
	})
}

// FuzzDecodeCheckpoint feeds mutated checkpoints to the decoder: errors are
// fine, panics and hangs are not.
func FuzzDecodeCheckpoint(f *testing.F) {
	raw := tinyCheckpoint(f)
	f.Add(raw)
	f.Add(raw[:100])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		ck, err := decodeCheckpoint(data)
		if err == nil {
			require.NoError(t, ck.Weights.Validate())
		}
	})
}
