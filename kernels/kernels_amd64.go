package kernels

import "golang.org/x/sys/cpu"

//go:generate go run asm_gen.go

// The micro-kernels of kernels_amd64.s. Each reads only the memory its
// arguments describe; callers check every bound first.

//go:noescape
func gemmKernel12x32(kc int, a *float32, lda int, b, c *float32, ldc int, bias *float32, accumulate bool)

//go:noescape
func gemmKernel6x16(kc int, a *float32, lda int, b, c *float32, ldc int, bias *float32, accumulate bool)

//go:noescape
func gemmKernel12x16(kc int, a *float32, lda int, b, c *float32, ldc int, bias *float32, accumulate bool)

//go:noescape
func gemmKernel12x8(kc int, a *float32, lda int, b, c *float32, ldc int, bias *float32, accumulate bool)

//go:noescape
func gemmKernel8x48(kc int, a *float32, lda int, b, c *float32, ldc int, bias *float32, accumulate bool)

// gemmKernel1x48 ... gemmKernel7x48 are gemmKernel8x48 for fewer rows.

//go:noescape
func gemmKernel1x48(kc int, a *float32, lda int, b, c *float32, ldc int, bias *float32, accumulate bool)

//go:noescape
func gemmKernel2x48(kc int, a *float32, lda int, b, c *float32, ldc int, bias *float32, accumulate bool)

//go:noescape
func gemmKernel3x48(kc int, a *float32, lda int, b, c *float32, ldc int, bias *float32, accumulate bool)

//go:noescape
func gemmKernel4x48(kc int, a *float32, lda int, b, c *float32, ldc int, bias *float32, accumulate bool)

//go:noescape
func gemmKernel5x48(kc int, a *float32, lda int, b, c *float32, ldc int, bias *float32, accumulate bool)

//go:noescape
func gemmKernel6x48(kc int, a *float32, lda int, b, c *float32, ldc int, bias *float32, accumulate bool)

//go:noescape
func gemmKernel7x48(kc int, a *float32, lda int, b, c *float32, ldc int, bias *float32, accumulate bool)

//go:noescape
func blockColumn6x8p(a *float32, lda int, data *float32, rowBlock *int32, nblk int, c *float32, ldc int)

//go:noescape
func blockColumn6x16(a *float32, lda int, data *float32, rowBlock *int32, nblk int, c *float32, ldc int)

//go:noescape
func blockColumn6x32(a *float32, lda int, data *float32, rowBlock *int32, nblk int, c *float32, ldc int)

//go:noescape
func blockColumn12x8q(a *float32, lda int, data *float32, rowBlock *int32, nblk int, c *float32, ldc int)

//go:noescape
func blockColumn12x16p(a *float32, lda int, data *float32, rowBlock *int32, nblk int, c *float32, ldc int)

//go:noescape
func blockColumn8x32(a *float32, lda int, data *float32, rowBlock *int32, nblk int, c *float32, ldc int)

//go:noescape
func packRows(dst, src *float32, ldb, kc, panels, nr, step int)

//go:noescape
func transpose8(dst *float32, ldd int, src *float32, lds int, alpha float32)

//go:noescape
func nonFinite64(src *float32, n int) int

//go:noescape
func nonFinite64AVX2(src *float32, n int) int

var (
	hasAVX2   = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	hasAVX512 = hasAVX2 && cpu.X86.HasAVX512F
)

// fastNonFinite is FirstNonFinite's SIMD scan of whole blocks of 64, or nil.
var fastNonFinite = func() func(src *float32, n int) int {
	switch {
	case hasAVX512:
		return nonFinite64
	case hasAVX2:
		return nonFinite64AVX2
	}
	return nil
}()

// fastPackRows is packB's SIMD copy of whole panels, or nil.
var fastPackRows = func() func(dst, src *float32, ldb, kc, panels, nr, step int) {
	if hasAVX2 {
		return packRows
	}
	return nil
}()

// fastTranspose8 is packB's SIMD transpose of 8x8 blocks, or nil.
var fastTranspose8 = func() func(dst *float32, ldd int, src *float32, lds int, alpha float32) {
	if hasAVX2 {
		return transpose8
	}
	return nil
}()

// gemmKernelFor is the micro-kernel for products n columns wide: 8x48
// where 48 divides n (the ViTs' linear layers, 384 and 1536 wide: 4-9%
// faster than 12x32 there on earlier machines, 3-8% on Zen 5, its loads
// per FMA 11/24 against 14/24), else fastGemm, whose 32 columns waste less
// on the attention products' edges.
func gemmKernelFor(n int) *microKernel {
	if hasAVX512 && n%48 == 0 {
		return gemm8x48
	}
	return fastGemm
}

var gemm8x48 = &microKernel{mr: 8, nr: 48, run: gemmKernel8x48, tails: []kernelFunc{
	1: gemmKernel1x48, 2: gemmKernel2x48, 3: gemmKernel3x48, 4: gemmKernel4x48,
	5: gemmKernel5x48, 6: gemmKernel6x48, 7: gemmKernel7x48,
}}

// fastGemm is the register-tiled micro-kernel this CPU runs best, or nil.
var fastGemm = func() *microKernel {
	switch {
	case hasAVX512:
		// The last panel of a width that 32 does not divide is multiplied
		// 16 wide, or 8 wide (in YMM registers, half the instructions of a
		// 16-wide panel) when it has 8 or fewer columns: 198 columns waste
		// 2 of 200 instead of 10 of 208 (16 wide) or 26 of 224.
		edge8 := &microKernel{mr: 12, nr: 8, run: gemmKernel12x8}
		edge16 := &microKernel{mr: 12, nr: 16, run: gemmKernel12x16, edge: edge8}
		return &microKernel{mr: 12, nr: 32, run: gemmKernel12x32, edge: edge16}
	case hasAVX2:
		// Eight panels (192 KB of B at kc = 384) a sweep of A's tiles, each
		// tile then in L1: than one, 16-18% faster on 197x384x1536 and 1-4%
		// on 197x1536x384 and 198x384x384 on Zen 3 (512 KB L2).
		return &microKernel{mr: 6, nr: 16, run: gemmKernel6x16, chunk: 8}
	}
	return nil
}()

// fastBlockColumn returns the SIMD kernel for b×b blocks, or nil.
func fastBlockColumn(b int) *blockColumnKernel {
	switch {
	case b == 8 && hasAVX512:
		return &blockColumnKernel{rows: 12, run: blockColumn12x8q, interleave: 4}
	case b == 8 && hasAVX2:
		return &blockColumnKernel{rows: 6, run: blockColumn6x8p, interleave: 2}
	case b == 16 && hasAVX512:
		return &blockColumnKernel{rows: 12, run: blockColumn12x16p, interleave: 2}
	case b == 16 && hasAVX2:
		return &blockColumnKernel{rows: 6, run: blockColumn6x16}
	case b == 32 && hasAVX512:
		return &blockColumnKernel{rows: 8, run: blockColumn8x32}
	case b == 32 && hasAVX2:
		return &blockColumnKernel{rows: 6, run: blockColumn6x32}
	}
	return nil
}

//go:noescape
func expShift16(dst, src *float32, n int, shift float32, sums *[16]float32)

//go:noescape
func gelu16(dst, src *float32, n int)

//go:noescape
func max16(src *float32, n int, lanes *[16]float32)

//go:noescape
func scale16(x *float32, n int, s float32)

// expShift16AVX2 ... scale16AVX2 are the kernels above in two YMM halves a vector.

//go:noescape
func expShift16AVX2(dst, src *float32, n int, shift float32, sums *[16]float32)

//go:noescape
func gelu16AVX2(dst, src *float32, n int)

//go:noescape
func max16AVX2(src *float32, n int, lanes *[16]float32)

//go:noescape
func scale16AVX2(x *float32, n int, s float32)

var (
	avx512Elementwise = elementwise{max: max16, expShift: expShift16, scale: scale16, gelu: gelu16}
	avx2Elementwise   = elementwise{max: max16AVX2, expShift: expShift16AVX2, scale: scale16AVX2, gelu: gelu16AVX2}
)

// fastElementwise are the SIMD forms of softmax's exponentials and GELU.
var fastElementwise = func() elementwise {
	switch {
	case hasAVX512:
		return avx512Elementwise
	case hasAVX2:
		return avx2Elementwise
	}
	return elementwise{}
}()
