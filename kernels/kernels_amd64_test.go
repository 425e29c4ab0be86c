package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func simdGemmKernels() map[string]*microKernel {
	ks := map[string]*microKernel{}
	if hasAVX2 {
		ks["avx2-6x16"] = &microKernel{mr: 6, nr: 16, run: gemmKernel6x16}
	}
	if hasAVX512 {
		ks["avx512-12x32"] = &microKernel{mr: 12, nr: 32, run: gemmKernel12x32}
		ks["avx512-8x48"] = gemm8x48
	}
	return ks
}

// BenchmarkGemmKernels pairs the AVX-512 micro-kernels on the linear
// layers' shapes, whose widths both divide: Gemm picks 8x48 there.
func BenchmarkGemmKernels(b *testing.B) {
	if !hasAVX512 {
		b.Skip("no AVX-512")
	}
	k12 := &microKernel{mr: 12, nr: 32, run: gemmKernel12x32}
	for _, s := range benchShapes {
		m, k, n := s[0], s[1], s[2]
		rng := rand.New(rand.NewPCG(1, 2))
		a, w, c := randSlice(rng, m*k), randSlice(rng, k*n), make([]float32, m*n)
		b.Run(fmt.Sprintf("%dx%dx%d", m, k, n), func(b *testing.B) {
			pairedRates(b, 2*float64(m*n*k),
				"12x32", func() { gemm(k12, false, false, m, n, k, 1, a, k, w, n, 0, c, n) },
				"8x48", func() { gemm(gemm8x48, false, false, m, n, k, 1, a, k, w, n, 0, c, n) })
		})
	}
}
