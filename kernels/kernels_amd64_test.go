package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func simdGemmKernels() map[string]*microKernel {
	ks := map[string]*microKernel{}
	if hasAVX2 {
		ks["avx2-6x16"] = &microKernel{mr: 6, nr: 16, run: gemmKernel6x16}
		ks["avx2-6x16/chunked"] = &microKernel{mr: 6, nr: 16, run: gemmKernel6x16, chunk: 8}
	}
	if hasAVX512 {
		ks["avx512-12x32"] = &microKernel{mr: 12, nr: 32, run: gemmKernel12x32}
		ks["avx512-12x32+edges"] = fastGemm // the last panel 16 or 8 wide where it fits
		ks["avx512-12x16"] = &microKernel{mr: 12, nr: 16, run: gemmKernel12x16}
		ks["avx512-12x8"] = &microKernel{mr: 12, nr: 8, run: gemmKernel12x8}
		ks["avx512-8x48"] = gemm8x48
		ks["avx512-8x48/padded-tail"] = &microKernel{mr: 8, nr: 48, run: gemmKernel8x48} // a last tile of fewer rows through a padded one
	}
	return ks
}

// simdElementwise are the SIMD element-wise kernel sets this CPU runs:
// the AVX2 ones are tested on AVX-512 machines too.
func simdElementwise() map[string]elementwise {
	ks := map[string]elementwise{}
	if hasAVX2 {
		ks["avx2"] = avx2Elementwise
	}
	if hasAVX512 {
		ks["avx512"] = avx512Elementwise
	}
	return ks
}

// TestFirstNonFiniteSIMD runs every SIMD scan this CPU has: the AVX2 one
// on AVX-512 machines too.
func TestFirstNonFiniteSIMD(t *testing.T) {
	scans := map[string]func(*float32, int) int{}
	if hasAVX2 {
		scans["avx2"] = nonFinite64AVX2
	}
	if hasAVX512 {
		scans["avx512"] = nonFinite64
	}
	for name, scan := range scans {
		t.Run(name, func(t *testing.T) { testFirstNonFinite(t, func(x []float32) int { return firstNonFinite(scan, x) }) })
	}
}

// TestPackRows checks packB's SIMD copy against its portable form.
func TestPackRows(t *testing.T) {
	if fastPackRows == nil {
		t.Skip("no AVX2")
	}
	rng := rand.New(rand.NewPCG(9, 10))
	for _, nr := range []int{16, 32, 48} {
		const ldb, kc, panels = 101 * 8, 13, 5
		src := randSlice(rng, (kc-1)*ldb+panels*nr)
		step := panelStride(kc, nr)
		want, got := make([]float32, panels*step+1), make([]float32, panels*step+1)
		packRowsGo(want, src, ldb, kc, panels, nr, step)
		fastPackRows(&got[0], &src[0], ldb, kc, panels, nr, step)
		require.Equal(t, want, got, "nr=%d", nr) // the last value, past the panels, stays zero in both
	}
}

// TestPackBPortable checks packB's portable path against its SIMD one on a
// slab of several whole panels and a narrower last one.
func TestPackBPortable(t *testing.T) {
	if fastPackRows == nil || !hasAVX512 {
		t.Skip("no AVX-512")
	}
	rng := rand.New(rand.NewPCG(23, 24))
	const kc, nc, ldb = 37, 6*48 + 17, 6*48 + 20
	b := randSlice(rng, kc*ldb)
	size := slabFloats(gemm8x48, kc, nc)
	fast, portable := make([]float32, size), make([]float32, size)
	packB(fast, gemm8x48, false, 1, b, ldb, 0, 0, kc, nc)
	defer func(f func(dst, src *float32, ldb, kc, panels, nr, step int)) { fastPackRows = f }(fastPackRows)
	fastPackRows = nil
	packB(portable, gemm8x48, false, 1, b, ldb, 0, 0, kc, nc)
	require.Equal(t, fast, portable)
}

// TestTransposeScaled checks the 8x8 SIMD blocks against the portable loop,
// on sizes with and without edges.
func TestTransposeScaled(t *testing.T) {
	if fastTranspose8 == nil {
		t.Skip("no AVX2")
	}
	rng := rand.New(rand.NewPCG(11, 12))
	for _, s := range [][2]int{{8, 8}, {64, 32}, {13, 21}, {7, 9}, {64, 6}} {
		rows, cols := s[0], s[1]
		const lds, ldd = 70, 40
		src := randSlice(rng, (cols-1)*lds+rows)
		want, got := make([]float32, rows*ldd), make([]float32, rows*ldd)
		transposeScaled(got, ldd, src, lds, rows, cols, 0.125)
		fast := fastTranspose8
		fastTranspose8 = nil
		transposeScaled(want, ldd, src, lds, rows, cols, 0.125)
		fastTranspose8 = fast
		require.Equal(t, want, got, "%dx%d", rows, cols)
	}
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
