//go:build openblas

package kernels

import (
	"fmt"
	"math"
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
		got := tc.run(openBLAS(1))
		for i := range want {
			if tol := float32Tol(tc.k, scale[i]); math.Abs(got[i]-want[i]) > tol {
				require.InDeltaf(t, want[i], got[i], tol, "%v element %d", tc, i)
			}
		}
	}
}

func BenchmarkGemmOpenBLAS(b *testing.B) {
	for _, p := range benchProducts() {
		for _, threads := range []int{1, runtime.GOMAXPROCS(0)} {
			b.Run(fmt.Sprintf("%s/threads=%d", p.name, threads), func(b *testing.B) {
				rate := startMeter(p.flops())
				for b.Loop() {
					p.run(openBLAS(threads))
				}
				rate.report(b)
			})
		}
	}
}

// BenchmarkGemmVsOpenBLAS pairs vitflow's GEMM with OpenBLAS iteration by
// iteration, each on the same number of threads, so that both meet the
// same load.
func BenchmarkGemmVsOpenBLAS(b *testing.B) {
	for _, p := range benchProducts() {
		for _, threads := range []int{1, runtime.GOMAXPROCS(0)} {
			b.Run(fmt.Sprintf("%s/threads=%d", p.name, threads), func(b *testing.B) {
				pairedRates(b, p.flops(),
					"vitflow", func() { p.run(withWorkers(threads)) },
					"openblas", func() { p.run(openBLAS(threads)) })
			})
		}
	}
}

// openBLAS is OpenBLAS's SGEMM on threads threads, shaped as Gemm.
func openBLAS(threads int) gemmFunc {
	return func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		openblas.Gemm(threads, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	}
}
