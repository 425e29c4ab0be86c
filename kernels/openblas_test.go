//go:build openblas

package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"vitflow/kernels/internal/openblas"

	"github.com/stretchr/testify/require"
)

// TestOpenBLASAgrees checks the comparison is fair: OpenBLAS computes what Gemm does.
func TestOpenBLASAgrees(t *testing.T) {
	for _, tc := range gemmCases() {
		if tc.m == 0 || tc.n == 0 || tc.k == 0 {
			continue
		}
		want, scale := tc.reference()
		got := tc.run(func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
			openblas.Gemm(1, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		})
		for i := range want {
			if tol := float32Tol(tc.k, scale[i]); math.Abs(got[i]-want[i]) > tol {
				require.InDeltaf(t, want[i], got[i], tol, "%v element %d", tc, i)
			}
		}
	}
}

func BenchmarkGemmOpenBLAS(b *testing.B) {
	for _, s := range benchShapes {
		m, k, n := s[0], s[1], s[2]
		rng := rand.New(rand.NewPCG(1, 2))
		a, w, c := randSlice(rng, m*k), randSlice(rng, k*n), make([]float32, m*n)
		for _, threads := range []int{1, runtime.GOMAXPROCS(0)} {
			b.Run(fmt.Sprintf("%dx%dx%d/threads=%d", m, k, n, threads), func(b *testing.B) {
				rate := startMeter(2 * float64(m*n*k))
				for b.Loop() {
					openblas.Gemm(threads, false, false, m, n, k, 1, a, k, w, n, 0, c, n)
				}
				rate.report(b)
			})
		}
	}
}

// BenchmarkGemmVsOpenBLAS pairs vitflow's GEMM with OpenBLAS iteration by
// iteration on one thread, so that both meet the same load.
func BenchmarkGemmVsOpenBLAS(b *testing.B) {
	for _, s := range benchShapes {
		m, k, n := s[0], s[1], s[2]
		rng := rand.New(rand.NewPCG(1, 2))
		a, w, c := randSlice(rng, m*k), randSlice(rng, k*n), make([]float32, m*n)
		b.Run(fmt.Sprintf("%dx%dx%d/threads=1", m, k, n), func(b *testing.B) {
			pairedRates(b, 2*float64(m*n*k),
				"vitflow", func() { Gemm(false, false, m, n, k, 1, a, k, w, n, 0, c, n) },
				"openblas", func() { openblas.Gemm(1, false, false, m, n, k, 1, a, k, w, n, 0, c, n) })
		})
	}
}
