package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPackedMul checks Packed.Mul with each epilogue against Gemm followed
// by separate AddBias and GELU passes, on every worker count: the values
// must be the same bits, since the epilogue adds in the same order.
func TestPackedMul(t *testing.T) {
	defer func(v int) { minWorkerFlops = v }(minWorkerFlops)
	minWorkerFlops = 1 // split even these small products
	rng := rand.New(rand.NewPCG(13, 14))
	for _, s := range [][3]int{{1, 1, 1}, {7, 13, 5}, {198, 384, 1536}, {197, 1536, 384}, {25, 300, 1601}, {13, 0, 40}, {0, 8, 8}} {
		m, k, n := s[0], s[1], s[2]
		a, b, bias := randSlice(rng, m*k+3), randSlice(rng, k*n+5), randSlice(rng, n)
		p := PackB(b, k, n, n)
		for _, e := range []*Epilogue{nil, {Bias: bias}, {GELU: true}, {Bias: bias, GELU: true}} {
			want := make([]float32, m*n)
			Gemm(false, false, m, n, k, 1, a, k, b, n, 0, want, n)
			if e != nil && e.Bias != nil {
				AddBias(want, bias, m, n)
			}
			if e != nil && e.GELU {
				for i := range m {
					GELU(want[i*n:(i+1)*n], want[i*n:(i+1)*n])
				}
			}
			for _, workers := range []int{1, 2, 3} {
				name := fmt.Sprintf("%dx%dx%d/%+v/workers=%d", m, k, n, e, workers)
				got := make([]float32, m*n)
				for i := range got {
					got[i] = float32(math.NaN()) // C is overwritten, never read
				}
				p.Mul(workers, m, a, k, got, n, e)
				require.Equal(t, want, got, name)
			}
		}
	}
}

// TestPackedMulPortable checks the portable path (no micro-kernel) against the reference.
func TestPackedMulPortable(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	const m, k, n = 9, 21, 17
	a, b, bias := randSlice(rng, m*k), randSlice(rng, k*n), randSlice(rng, n)
	p := PackB(b, k, n, n)
	p.kern, p.slabs, p.dense = nil, nil, append([]float32(nil), b...)
	got := make([]float32, m*n)
	p.Mul(1, m, a, k, got, n, &Epilogue{Bias: bias})
	want, scale := gemmRef(false, false, m, n, k, 1, a, k, b, n, 0, make([]float32, m*n), n)
	for i := range want {
		require.InDelta(t, want[i]+float64(bias[i%n]), float64(got[i]), float32Tol(k, scale[i])+1e-6)
	}
}

func TestPackedPanicsOnShortSlices(t *testing.T) {
	p := PackB(make([]float32, 12), 3, 4, 4)
	require.Panics(t, func() { PackB(make([]float32, 11), 3, 4, 4) })
	require.Panics(t, func() { p.Mul(1, 2, make([]float32, 5), 3, make([]float32, 8), 4, nil) })
	require.Panics(t, func() { p.Mul(1, 2, make([]float32, 6), 3, make([]float32, 7), 4, nil) })
	require.Panics(t, func() { p.Mul(1, 2, make([]float32, 6), 3, make([]float32, 8), 4, &Epilogue{Bias: make([]float32, 3)}) })
}
