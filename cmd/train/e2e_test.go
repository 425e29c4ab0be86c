package main

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"vitflow/prune"
	"vitflow/vit"
)

// TestEndToEnd trains a dense model for a few steps, fine-prunes it, resumes
// the finished pruning run from its checkpoint, and evaluates the result:
// every file the commands write must load and carry its pruning.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("trains and evaluates on MNIST")
	}
	dir := t.TempDir()
	dense, pruned := filepath.Join(dir, "dense.safetensors"), filepath.Join(dir, "pruned.safetensors")
	cmd := func(args ...string) (string, string) {
		var stdout, stderr bytes.Buffer
		require.NoError(t, run(args, &stdout, &stderr), "train %v: %s", args, stderr.String())
		return stdout.String(), stderr.String()
	}
	out, _ := cmd("dense", "-train-images", "128", "-test-images", "300", "-epochs", "1", "-out", dense)
	assert.Contains(t, out, "test accuracy")
	pruneArgs := []string{"prune", "-from", dense, "-train-images", "128", "-test-images", "300", "-epochs", "2", "-prune-warmup", "0",
		"-prune-cooldown", "1", "-keep", "0.7", "-out", pruned}
	_, progress := cmd(pruneArgs...)
	assert.Contains(t, progress, "epoch 2/2 done")
	assert.Contains(t, progress, "density 0.500")
	_, progress = cmd(append(pruneArgs, "-resume")...)
	assert.Contains(t, progress, "resumed from "+pruned+".ckpt after epoch 2")

	out, _ = cmd("eval", "-model", pruned, "-test-images", "300")
	assert.Contains(t, out, "/300)")
	cfg, err := vit.Preset("mnist-tiny")
	require.NoError(t, err)
	_, meta, err := vit.LoadWeights(pruned, cfg)
	require.NoError(t, err)
	p, err := vit.DecodePruning(meta[prune.MetaPruning], cfg)
	require.NoError(t, err)
	assert.Equal(t, 0.7, p.Keep)
	assert.Equal(t, []int{0, 1, 2}, p.TDLayers)
	require.Len(t, p.Layers, cfg.Depth)
	for _, m := range p.Layers {
		kept := 0
		for _, k := range m.Q {
			if k {
				kept++
			}
		}
		assert.Equal(t, 8, kept, "Q blocks kept at density 0.5")
	}
	assert.Equal(t, "300", meta[metaTestSize])
	for _, key := range []string{prune.MetaTestAccuracy, prune.MetaTestCorrect, prune.MetaSubsetCorrect, metaCommand} {
		assert.NotEmpty(t, meta[key], key)
	}
}
