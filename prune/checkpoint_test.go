package prune

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tinyCheckpoint is the bytes of a real checkpoint of the small model after one epoch on 64 images.
func tinyCheckpoint(t testing.TB) []byte {
	t.Helper()
	cfg := smallConfig()
	ds := &Dataset{Images: randomImages(cfg, 16, 3), Labels: make([]int, 16)}
	opt := smallPrune()
	opt.Epochs, opt.PruneWarmupEpochs, opt.PruneCooldownEpochs = 1, 0, 0
	tr, err := NewTrainer(InitWeights(cfg, 1), InitWeights(cfg, 2), ds, opt)
	require.NoError(t, err)
	tr.TrainEpoch(nil)
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
