// Package kernels holds the float32 numerics of vitflow: dense and block-sparse
// matrix products, softmax, LayerNorm, GELU and top-k. Matrices are row-major.
// It knows nothing about ViTs, so any dataflow model can use it.
package kernels

import (
	"cmp"
	"math"
	"slices"
)

// Gemm computes C = alpha*op(A)*op(B) + beta*C where op(A) is m×k, op(B) is
// k×n and C is m×n, all row-major with leading dimensions lda, ldb, ldc.
// transA/transB select A^T / B^T (then A is stored k×m, B n×k).
// It panics if a slice is too short for its dimensions. On amd64 with AVX2/FMA
// or AVX-512 it runs a packed, cache-blocked SIMD GEMM.
func Gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemm(fastGemm, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// MatMul computes C[m×n] = A[m×k]·B[k×n], overwriting C.
func MatMul(c, a, b []float32, m, k, n int) {
	Gemm(false, false, m, n, k, 1, a, k, b, n, 0, c, n)
}

func gemmPortable(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := range m {
		ci := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(ci)
		} else if beta != 1 {
			for j := range ci {
				ci[j] *= beta
			}
		}
		for p := range k {
			var aip float32
			if transA {
				aip = a[p*lda+i]
			} else {
				aip = a[i*lda+p]
			}
			aip *= alpha
			if aip == 0 {
				continue
			}
			if transB {
				for j := range ci {
					ci[j] += aip * b[j*ldb+p]
				}
			} else {
				bp := b[p*ldb : p*ldb+n]
				for j, bv := range bp {
					ci[j] += aip * bv
				}
			}
		}
	}
}

// elementwise holds SIMD forms of the element-wise kernels, each working on
// whole vectors of 16 (n counts vectors); nil fields mean portable Go loops.
// They are all set or all nil.
type elementwise struct {
	// max sets lanes to the lane-wise maximum of lanes and src.
	max func(src *float32, n int, lanes *[16]float32)
	// expShift sets dst = e^(src-shift) and adds the lane-wise sums of dst into sums.
	expShift func(dst, src *float32, n int, shift float32, sums *[16]float32)
	scale    func(x *float32, n int, s float32)
	gelu     func(dst, src *float32, n int)
}

// SoftmaxRows applies a numerically stable softmax to each of the rows of x (rows×cols) in place.
func SoftmaxRows(x []float32, rows, cols int) {
	softmaxRows(fastElementwise, x, rows, cols)
}

func softmaxRows(simd elementwise, x []float32, rows, cols int) {
	negInf := float32(math.Inf(-1))
	// Scratch vectors for the SIMD kernels, allocated once: they escape
	// through the kernel function values.
	scratch := new([3][16]float32)
	for r := range rows {
		row := x[r*cols : (r+1)*cols]
		if simd.max == nil {
			mx := negInf
			for _, v := range row {
				mx = max(mx, v)
			}
			var sum float32
			for i, v := range row {
				e := float32(math.Exp(float64(v - mx)))
				row[i] = e
				sum += e
			}
			inv := 1 / sum
			for i := range row {
				row[i] *= inv
			}
			continue
		}
		// The SIMD kernels run on whole vectors; the tail goes through a
		// vector padded with -Inf, which changes no maximum and adds e^-Inf = 0 to the sum.
		full, tail := len(row)/16, row[len(row)/16*16:]
		buf, lanes, sums := &scratch[0], &scratch[1], &scratch[2]
		for i := range buf {
			buf[i] = negInf
		}
		copy(buf[:], tail)
		*lanes = *buf
		if full > 0 {
			simd.max(&row[0], full, lanes)
		}
		mx := negInf
		for _, v := range lanes {
			mx = max(mx, v)
		}
		*sums = [16]float32{}
		if full > 0 {
			simd.expShift(&row[0], &row[0], full, mx, sums)
		}
		if len(tail) > 0 {
			simd.expShift(&buf[0], &buf[0], 1, mx, sums)
		}
		var sum float32
		for _, s := range sums {
			sum += s
		}
		inv := 1 / sum
		if full > 0 {
			simd.scale(&row[0], full, inv)
		}
		for i, v := range buf[:len(tail)] {
			tail[i] = v * inv
		}
	}
}

// LayerNorm normalises each row of x (rows×cols) to zero mean and unit
// variance, then scales by gamma and shifts by beta, writing dst (may alias x).
func LayerNorm(dst, x, gamma, beta []float32, rows, cols int, eps float32) {
	for r := range rows {
		row := x[r*cols : (r+1)*cols]
		out := dst[r*cols : (r+1)*cols]
		var mean float32
		for _, v := range row {
			mean += v
		}
		mean /= float32(cols)
		var variance float32
		for _, v := range row {
			d := v - mean
			variance += d * d
		}
		variance /= float32(cols)
		inv := float32(1 / math.Sqrt(float64(variance+eps)))
		for i, v := range row {
			out[i] = (v-mean)*inv*gamma[i] + beta[i]
		}
	}
}

// GELU writes the exact (erf, not tanh) GELU of x into dst (may alias x).
// The AVX-512 path evaluates erf to within 1.5e-7; the portable one in float64.
func GELU(dst, x []float32) {
	gelu(fastElementwise, dst, x)
}

func gelu(simd elementwise, dst, x []float32) {
	dst = dst[:len(x)]
	full := 0
	if simd.gelu != nil {
		full = len(x) / 16 * 16
		if full > 0 {
			simd.gelu(&dst[0], &x[0], full/16)
		}
	}
	for i, v := range x[full:] {
		dst[full+i] = float32(0.5 * float64(v) * (1 + math.Erf(float64(v)/math.Sqrt2)))
	}
}

// AddBias adds bias[j] to every row of x (rows×cols).
func AddBias(x, bias []float32, rows, cols int) {
	for r := range rows {
		row := x[r*cols : (r+1)*cols]
		for j, b := range bias {
			row[j] += b
		}
	}
}

// Add writes a+b into dst element-wise (dst may alias a or b).
func Add(dst, a, b []float32) {
	for i := range dst {
		dst[i] = a[i] + b[i]
	}
}

// TopK returns the indices of the k largest scores in descending score
// order; equal scores keep the lower index first, so the result is deterministic.
func TopK(scores []float32, k int) []int {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(scores[b], scores[a]) })
	return idx[:min(k, len(idx))]
}
