package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"vitflow/topology"
)

// TestStreamedRunMatchesItsChunks: a run of more than chunkImages images is
// the chunks' runs end to end: the same predictions as the reference, the
// chunks' cycles added up, and every cycle of the makespan attributed once.
func TestStreamedRunMatchesItsChunks(t *testing.T) {
	const n = 2*chunkImages + 8
	args := []string{"-topology", "small", "-images", strconv.Itoa(n), "-json", "-logits"}
	code, stdout, stderr := invoke(args...)
	require.Equal(t, 0, code, stderr)
	sim := decode(t, stdout)
	code, stdout, stderr = invoke(append(args, "-reference")...)
	require.Equal(t, 0, code, stderr)
	ref := decode(t, stdout)
	require.Len(t, sim.Top1, n)
	assert.Equal(t, ref.Top1, sim.Top1)
	require.Len(t, sim.Logits, n)
	for i := range n {
		require.Len(t, sim.Logits[i], len(ref.Logits[i]))
		for j, v := range ref.Logits[i] {
			assert.InDelta(t, v, sim.Logits[i][j], 1e-4*max(1, float64(abs(v))), "image %d logit %d", i, j)
		}
	}

	// The same chunks simulated here one by one.
	opt, err := parseFlags(args)
	require.NoError(t, err)
	m, err := loadModel(opt)
	require.NoError(t, err)
	in, err := loadInputs(opt, m.cfg)
	require.NoError(t, err)
	desc, err := topology.Load("small")
	require.NoError(t, err)
	var total int64
	causes := map[string]int64{}
	for start := 0; start < n; start += chunkImages {
		var px [][]float32
		for i := start; i < min(start+chunkImages, n); i++ {
			img, err := in.load(i)
			require.NoError(t, err)
			px = append(px, img)
		}
		res, err := topology.Simulate(context.Background(), topology.SimInput{Weights: m.weights, Pruning: m.pruning,
			DenseBlock: m.pruning.Block, Desc: desc, Images: px})
		require.NoError(t, err)
		total += res.Cycles
		for _, c := range res.Path.Causes {
			causes[string(c.Cause)] += c.Cycles
		}
	}
	assert.Equal(t, total, sim.CyclesTotal)
	assert.InDelta(t, float64(total)/n, sim.CyclesPerImage, 1e-9)
	var path int64
	for _, c := range sim.CriticalPath {
		assert.Equal(t, causes[c.Cause], c.Cycles, c.Cause)
		path += c.Cycles
	}
	assert.Equal(t, total, path, "every cycle on the path once")
	assert.NotEmpty(t, sim.Bottleneck)
	assert.NotEmpty(t, sim.Layers, "image 0's layers")
	for _, u := range sim.Units {
		assert.LessOrEqual(t, u.Utilization, 1.0, u.Name)
	}

	// Without -logits no logits are kept.
	code, stdout, stderr = invoke("-topology", "small", "-images", strconv.Itoa(n), "-json")
	require.Equal(t, 0, code, stderr)
	r := decode(t, stdout)
	assert.Nil(t, r.Logits)
	assert.Equal(t, sim.Top1, r.Top1)
	assert.Equal(t, sim.CyclesTotal, r.CyclesTotal)
}

func abs(v float32) float32 {
	if v < 0 {
		return -v
	}
	return v
}

func TestStreamingLimits(t *testing.T) {
	img := pngFile(t)
	many := make([]string, 0, 2*(maxImages+1))
	for range maxImages + 1 {
		many = append(many, "-image", img)
	}
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"too many image files", many, "-image given 10001 times: at most 10000 images a run"},
		{"trace of more than a chunk", []string{"-images", "17", "-trace", "t.json"}, "-trace records one simulated run of at most 16 images, not 17"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := invokeWithin(t, tt.args...)
			assertOneLineError(t, r, 2, tt.msg)
		})
	}
}

// peakRSS runs the command in a process of its own and returns its peak
// resident memory in bytes.
func peakRSS(t *testing.T, args ...string) int64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Run(), "stderr: %s", stderr.String())
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		t.Skip("no peak memory on this system")
	}
	return ru.Maxrss * 1024 // kilobytes on Linux
}

// TestMemoryDoesNotGrowWithTheImageCount: four times the images of one
// chunk take about the memory of one chunk, simulated and reference. Before
// streaming, DeiT-Tiny took 3.5 MB more per simulated image (122 MB for 16
// images, 289 MB for 64) and 0.6 MB more per reference image.
func TestMemoryDoesNotGrowWithTheImageCount(t *testing.T) {
	if testing.Short() {
		t.Skip("runs DeiT-Tiny on 64 images")
	}
	tests := []struct {
		name string
		args []string
		few  int
		many int
	}{
		{"simulated", []string{"-model", "deit-tiny", "-topology", "u250"}, chunkImages, 4 * chunkImages},
		{"reference", []string{"-model", "deit-tiny", "-reference"}, chunkImages, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			few := peakRSS(t, append(tt.args, "-images", strconv.Itoa(tt.few))...)
			many := peakRSS(t, append(tt.args, "-images", strconv.Itoa(tt.many))...)
			t.Logf("%d images: %d MB, %d images: %d MB", tt.few, few>>20, tt.many, many>>20)
			assert.Less(t, many, few+few/5, "peak memory grew with the image count")
		})
	}
}
