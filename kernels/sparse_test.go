package kernels

import (
	"fmt"
	"math"
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

// blockKernelsUnderTest are the block-sparse paths this machine can run for b.
func blockKernelsUnderTest(b int) map[string]*blockColumnKernel {
	ks := map[string]*blockColumnKernel{"portable": nil}
	if k := fastBlockColumn(b); k != nil {
		ks["simd"] = k
	}
	return ks
}

// zeroDropped returns w with the blocks s does not store set to zero.
func zeroDropped(w []float32, s *BlockSparse) []float32 {
	z := make([]float32, len(w))
	for bc := range s.Cols / s.B {
		for t := s.ColStart[bc]; t < s.ColStart[bc+1]; t++ {
			br := int(s.RowBlock[t])
			for i := range s.B {
				row := (br*s.B+i)*s.Cols + bc*s.B
				copy(z[row:row+s.B], w[row:row+s.B])
			}
		}
	}
	return z
}

func TestBlockSparseMatMul(t *testing.T) {
	for _, b := range []int{8, 16, 32} {
		for _, tc := range []struct {
			m, rows, cols int
			density       float64
		}{
			{1, 2 * b, 3 * b, 0.5}, {7, 3 * b, 2 * b, 0.5}, {8, 2 * b, 2 * b, 1}, {12, 4 * b, 3 * b, 0.6},
			{13, 5 * b, 2 * b, 0.3}, {197, 384, 384, 0.5}, {198, 384, 256, 0.25}, {197, 384, 512, 1},
			{20, 4 * b, 4 * b, 0},
		} {
			t.Run(fmt.Sprintf("b=%d/m=%d/%dx%d/d=%g", b, tc.m, tc.rows, tc.cols, tc.density), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(b*tc.m), uint64(tc.rows+tc.cols)))
				w := randSlice(rng, tc.rows*tc.cols)
				a := randSlice(rng, tc.m*tc.rows)
				s := packRandom(t, rng, w, tc.rows, tc.cols, b, tc.density)
				dense := zeroDropped(w, s)
				want, scale := gemmRef(false, false, tc.m, tc.cols, tc.rows, 1, a, tc.rows, dense, tc.cols, 0, make([]float32, tc.m*tc.cols), tc.cols)
				// The same product through the dense GEMM on the zeroed matrix.
				viaGemm := make([]float32, tc.m*tc.cols)
				MatMul(viaGemm, a, dense, tc.m, tc.rows, tc.cols)
				for name, kern := range blockKernelsUnderTest(b) {
					got := randSlice(rng, tc.m*tc.cols) // MatMul must overwrite C
					s.matMul(kern, got, a, tc.m)
					for i := range want {
						tol := float32Tol(tc.rows, scale[i])
						if math.Abs(float64(got[i])-want[i]) > tol {
							require.InDeltaf(t, want[i], got[i], tol, "%s: element %d", name, i)
						}
						if math.Abs(float64(got[i]-viaGemm[i])) > 2*tol {
							require.InDeltaf(t, viaGemm[i], got[i], 2*tol, "%s: element %d against dense GEMM", name, i)
						}
					}
					// Split over workers, bit for bit the same.
					for _, workers := range []int{2, 3, 5} {
						par := randSlice(rng, tc.m*tc.cols)
						s.matMulParallel(kern, workers, par, a, tc.m)
						require.Equal(t, got, par, "%s over %d workers", name, workers)
					}
				}
			})
		}
	}
}

// TestMulBlockColumnStrided runs single block-columns on A and C embedded in
// wider matrices and checks no value outside the block-column is touched.
func TestMulBlockColumnStrided(t *testing.T) {
	for _, b := range []int{8, 16, 32} {
		for name, kern := range blockKernelsUnderTest(b) {
			t.Run(fmt.Sprintf("b=%d/%s", b, name), func(t *testing.T) {
				const m = 29
				rows, cols := 3*b, 4*b
				lda, ldc := rows+5, cols+3
				rng := rand.New(rand.NewPCG(uint64(b), 9))
				w := randSlice(rng, rows*cols)
				a := randSlice(rng, m*lda)
				s := packRandom(t, rng, w, rows, cols, b, 0.6)
				dense := zeroDropped(w, s)
				c := make([]float32, m*ldc)
				for i := range c {
					c[i] = -7
				}
				for bc := range cols / b {
					s.mulColumns(kern, c, ldc, a, lda, m, bc, bc+1)
				}
				for i := range m {
					for j := range ldc {
						v := c[i*ldc+j]
						if j >= cols {
							require.Equal(t, float32(-7), v, "padding at row %d col %d overwritten", i, j)
							continue
						}
						var sum float64
						for p := range rows {
							sum += float64(a[i*lda+p]) * float64(dense[p*cols+j])
						}
						require.InDelta(t, sum, v, 1e-4*float64(rows), "row %d col %d", i, j)
					}
				}
			})
		}
	}
}

// TestBlockSparseAt reads every stored value back through At, whichever
// layout this machine packs b in.
func TestBlockSparseAt(t *testing.T) {
	for _, b := range []int{8, 16, 32} {
		rows, cols := 2*b, 3*b
		rng := rand.New(rand.NewPCG(uint64(b), 1))
		w := randSlice(rng, rows*cols)
		s := packRandom(t, rng, w, rows, cols, b, 0.6)
		require.Equal(t, layout(b), s.group(), "b=%d", b)
		for bc := range cols / b {
			for blk := s.ColStart[bc]; blk < s.ColStart[bc+1]; blk++ {
				br := int(s.RowBlock[blk])
				for i := range b {
					for j := range b {
						require.Equal(t, w[(br*b+i)*cols+bc*b+j], s.At(int(blk), i, j), "b=%d block %d (%d, %d)", b, blk, i, j)
					}
				}
			}
		}
	}
}

// TestBlockSparseMatMulParallelChecksOnTheCaller: short operands panic on
// the calling goroutine, where the panic can be recovered, not in a share.
func TestBlockSparseMatMulParallelChecksOnTheCaller(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	const m, rows, cols, b = 16, 64, 64, 16
	s := packRandom(t, rng, randSlice(rng, rows*cols), rows, cols, b, 0.5)
	a, c := randSlice(rng, m*rows), make([]float32, m*cols)
	require.Panics(t, func() { s.MatMulParallel(2, c, a[:len(a)-1], m) })
	require.Panics(t, func() { s.MatMulParallel(2, c[:len(c)-1], a, m) })
	require.NotPanics(t, func() { s.MatMulParallel(2, c, a, m) })
}
