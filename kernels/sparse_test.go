package kernels

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// packRandom keeps each b×b block of w with probability density (seeded).
func packRandom(tb testing.TB, rng *rand.Rand, w []float32, rows, cols, b int, density float64) *BlockSparse {
	keep := make([]bool, (rows/b)*(cols/b))
	for i := range keep {
		keep[i] = rng.Float64() < density
	}
	s, err := PackBlockSparse(w, rows, cols, b, func(br, bc int) bool { return keep[br*(cols/b)+bc] })
	require.NoError(tb, err)
	return s
}
