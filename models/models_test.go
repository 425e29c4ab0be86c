package models

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"vitflow/prune"
	"vitflow/vit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestVariants(t *testing.T) {
	assert.Equal(t, []string{"dense", "pruned-k0.7", "pruned-k0.5", "pruned-k0.5-magnitude"}, Variants())
	assert.Contains(t, Variants(), Default)
	for _, v := range Variants() {
		assert.NotEmpty(t, Describe(v))
	}
	_, _, _, err := Load("nonexistent")
	assert.ErrorContains(t, err, `variant "nonexistent": unknown variant (have dense, pruned-k0.7, pruned-k0.5, pruned-k0.5-magnitude)`)
}

// TestRecordedAccuracy runs every embedded model through the reference forward
// pass on the first prune.SubsetImages MNIST test images and requires exactly
// the count recorded when it was trained.
func TestRecordedAccuracy(t *testing.T) {
	testSet, err := vit.LoadMNISTTest()
	require.NoError(t, err)
	cfg, err := vit.Preset(Model)
	require.NoError(t, err)
	subset := prune.MNIST(testSet, cfg, prune.SubsetImages)
	for _, name := range Variants() {
		t.Run(name, func(t *testing.T) {
			w, p, meta, err := Load(name)
			require.NoError(t, err)
			assert.Equal(t, name, meta.Variant)
			assert.InDelta(t, float64(meta.TestCorrect)/10000, meta.TestAccuracy, 1e-4)
			c, err := w.Compact(p)
			require.NoError(t, err)
			right, err := prune.ReferenceCorrect(c, subset)
			require.NoError(t, err)
			correct := 0
			for _, ok := range right {
				if ok {
					correct++
				}
			}
			assert.Equal(t, meta.SubsetCorrect, correct, "correct of the first %d test images", prune.SubsetImages)
			if name != "dense" {
				require.NotNil(t, p.Layers, "pruned model without masks")
				assert.Equal(t, []int{0, 1, 2}, p.TDLayers)
			}
		})
	}
}
