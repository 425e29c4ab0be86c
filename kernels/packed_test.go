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
	for _, s := range [][3]int{{1, 1, 1}, {7, 13, 5}, {198, 384, 1536}, {197, 1536, 384}, {25, kcBlock + 16, ncBlock + 65}, {13, 0, 40}, {0, 8, 8}} {
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

// TestPackedKernels runs Packed.Mul on every GEMM path of this machine,
// with leading dimensions wider than the matrices, against the reference.
func TestPackedKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for name, kern := range kernelsUnderTest() {
		for _, s := range [][3]int{{9, 21, 17}, {30, 300, 64}, {13, 257, 198}, {13, 37, 96}} {
			m, k, n := s[0], s[1], s[2]
			lda, ldb, ldc := k+3, n+5, n+2
			a, b, bias := randSlice(rng, m*lda), randSlice(rng, k*ldb), randSlice(rng, n)
			p := packWith(kern, b, k, n, ldb)
			got := make([]float32, m*ldc)
			p.Mul(2, m, a, lda, got, ldc, &Epilogue{Bias: bias})
			want, scale := gemmRef(false, false, m, n, k, 1, a, lda, b, ldb, 0, make([]float32, m*ldc), ldc)
			for i := range m {
				for j := range n {
					w := i*n + j // gemmRef's results are m×n
					require.InDelta(t, want[w]+float64(bias[j]), float64(got[i*ldc+j]), float32Tol(k, scale[w])+1e-6, "%s %v (%d, %d)", name, s, i, j)
				}
			}
		}
	}
}

func TestPackedPanicsOnShortSlices(t *testing.T) {
	p := PackB(make([]float32, 12), 3, 4, 4)
	require.Panics(t, func() { PackB(make([]float32, 11), 3, 4, 4) })
	require.Panics(t, func() { p.Mul(1, 2, make([]float32, 5), 3, make([]float32, 8), 4, nil) })
	require.Panics(t, func() { p.Mul(1, 2, make([]float32, 6), 3, make([]float32, 7), 4, nil) })
	require.Panics(t, func() { p.Mul(1, 2, make([]float32, 6), 3, make([]float32, 8), 4, &Epilogue{Bias: make([]float32, 3)}) })
}
