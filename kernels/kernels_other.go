//go:build !amd64

package kernels

// Without amd64 assembly every kernel runs its portable Go form.
var fastGemm *microKernel

func gemmKernelFor(int) *microKernel { return nil }

func fastBlockColumn(int) *blockColumnKernel { return nil }

var fastElementwise elementwise

var fastNonFinite func(src *float32, n int) int

var fastPackRows func(dst, src *float32, ldb, kc, panels, nr, step int)

var fastTranspose8 func(dst *float32, ldd int, src *float32, lds int, alpha float32)
