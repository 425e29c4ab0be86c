//go:build openblas

// Package openblas wraps OpenBLAS's SGEMM for the kernels benchmarks to
// compare against. It is compiled only with -tags openblas, so the default
// build stays pure Go; it needs cgo and Debian's libopenblas-dev. (It lives
// apart from kernels because a cgo package cannot hold Go assembly.)
package openblas

// #cgo LDFLAGS: -lopenblas
// #include <cblas.h>
import "C"

// Gemm is kernels.Gemm through OpenBLAS's cblas_sgemm on threads threads.
// Slices must be long enough for their dimensions, as for kernels.Gemm.
func Gemm(threads int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	trans := func(t bool) C.enum_CBLAS_TRANSPOSE {
		if t {
			return C.CblasTrans
		}
		return C.CblasNoTrans
	}
	C.openblas_set_num_threads(C.int(threads))
	C.cblas_sgemm(C.CblasRowMajor, trans(transA), trans(transB), C.blasint(m), C.blasint(n), C.blasint(k),
		C.float(alpha), (*C.float)(&a[0]), C.blasint(lda), (*C.float)(&b[0]), C.blasint(ldb),
		C.float(beta), (*C.float)(&c[0]), C.blasint(ldc))
}
