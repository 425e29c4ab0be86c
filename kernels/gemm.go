package kernels

import (
	"fmt"
	"runtime"
	"sync"
)

// Cache blocking of the packed GEMM: a kc×nc slab of B is packed once and
// swept by mc×kc slabs of A, whose mr-row panels stay in L2 while a kc×nr
// panel of B is reused by every A panel. kc = 384 leaves the ViTs' depths
// (64, 198, 384, 1536) no short k block, so that a product of depth 384
// writes C once.
const (
	kcBlock = 384
	mcBlock = 240 // a multiple of every mr
	ncBlock = 1536
)

// microKernel computes C[mr×nr] = A[mr×kc]·Bpanel, or adds it into C when
// accumulate is set, then adds bias[0:nr] to each row unless bias is nil;
// A's rows are lda floats apart.
type microKernel struct {
	mr, nr int
	run    kernelFunc
	edge   *microKernel // a narrower kernel of the same mr for a slab's last panel, or nil
	tails  []kernelFunc // tails[r] is run for r < mr rows, or nil: a last tile of fewer rows then goes through a padded one
	// chunk is how many of B's panels one sweep of A's row tiles meets
	// (0 or 1: one panel, which stays in L1 while A's tiles come from L2).
	chunk int
}

type kernelFunc func(kc int, a *float32, lda int, b, c *float32, ldc int, bias *float32, accumulate bool)

// forCols is the kernel for a panel of cols columns: the narrowest edge
// kernel that is wide enough. B's panels are packed at its width.
func (k *microKernel) forCols(cols int) *microKernel {
	for k.edge != nil && cols <= k.edge.nr {
		k = k.edge
	}
	return k
}

// packBuffers are the packed A and B slabs and the edge tile of one GEMM
// call, pooled because a B slab is 2.4 MB and GEMMs come by the thousand in a forward pass.
type packBuffers struct {
	a, b []float32
	tile [12 * 32]float32 // an edge tile, computed whole then clipped into C: at least mr*nr of every kernel
}

var packPool = sync.Pool{New: func() any {
	return &packBuffers{a: make([]float32, mcBlock*kcBlock)}
}}

// panelPad floats follow each packed panel of B, so that the panels are not
// a multiple of 4 KB apart: packing B row by row writes a line into every
// panel in turn, and 24 KB apart (kc = 384, nr = 16) every one of them fell
// in the same L1 set. packRows ran at 12.5-13.6 GB/s without the pad and at
// 29.5-31.3 with it (Zen 3).
const panelPad = 16

// panelStride is how many floats one packed panel of B takes.
func panelStride(kc, nr int) int { return kc*nr + panelPad }

// panelStart is where, in a slab of kc-deep panels nr wide, the panel of
// column j0 (a multiple of nr) starts.
func panelStart(j0, kc, nr int) int { return j0 / nr * panelStride(kc, nr) }

// slabFloats is the size of a packed kc×nc slab of B in kern's panels.
func slabFloats(kern *microKernel, kc, nc int) int {
	return (nc + kern.nr - 1) / kern.nr * panelStride(kc, kern.nr)
}

// checkGemm panics, as BLAS does, when a slice is too short for its dimensions.
func checkGemm(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("kernels: gemm with negative dimension %dx%dx%d", m, n, k))
	}
	if transA {
		checkMatrix("A", k, m, lda, len(a))
	} else {
		checkMatrix("A", m, k, lda, len(a))
	}
	if transB {
		checkMatrix("B", n, k, ldb, len(b))
	} else {
		checkMatrix("B", k, n, ldb, len(b))
	}
	checkMatrix("C", m, n, ldc, len(c))
}

// checkMatrix panics when have values cannot hold a rows×cols matrix whose rows are ld apart.
func checkMatrix(name string, rows, cols, ld, have int) {
	if rows == 0 || cols == 0 {
		return
	}
	if ld < cols || (rows-1)*ld+cols > have {
		panic(fmt.Sprintf("kernels: gemm %s is %dx%d with leading dimension %d but has %d values", name, rows, cols, ld, have))
	}
}

// gemm is Gemm on the given micro-kernel; kern == nil runs the portable loops.
func gemm(kern *microKernel, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	// With beta == 0 the kernels overwrite C in the first k block, which
	// also drops NaNs in C, as BLAS does; where they do not run, clear it.
	overwrite := kern != nil && beta == 0 && alpha != 0 && k > 0
	for i := range m {
		ci := c[i*ldc : i*ldc+n]
		if beta == 0 && !overwrite {
			clear(ci)
		} else if beta != 0 && beta != 1 {
			for j := range ci {
				ci[j] *= beta
			}
		}
	}
	if kern == nil {
		gemmPortable(transA, transB, m, n, k, alpha, a, lda, b, ldb, c, ldc)
		return
	}
	if alpha == 0 || k == 0 {
		return
	}
	buf := packPool.Get().(*packBuffers)
	defer packPool.Put(buf)
	for jc := 0; jc < n; jc += ncBlock {
		nc := min(ncBlock, n-jc)
		for pc := 0; pc < k; pc += kcBlock {
			kc := min(kcBlock, k-pc)
			if need := slabFloats(kern, kc, nc); len(buf.b) < need {
				buf.b = make([]float32, need)
			}
			packB(buf.b, kern, transB, alpha, b, ldb, pc, jc, kc, nc)
			sweep(kern, buf, slab{b: buf.b, pc: pc, kc: kc, jc: jc, nc: nc}, transA, m, a, lda, c, ldc, pc > 0 || !overwrite, nil)
		}
	}
}

// slab is a packed kc×nc block of B: rows pc.. and columns jc.. of op(B),
// in panels of nr columns, the one of column j0 at b[panelStart(j0, kc, nr):].
type slab struct {
	b              []float32
	pc, kc, jc, nc int
}

// sweep multiplies rows 0..m of op(A)'s columns s.pc.. by the slab s into
// C's columns s.jc.., adding to C when accumulate is set. A non-nil e is
// applied to each tile once it is final (the slab is B's last k block).
func sweep(kern *microKernel, buf *packBuffers, s slab, transA bool, m int, a []float32, lda int, c []float32, ldc int, accumulate bool, e *Epilogue) {
	mr, nr, kc := kern.mr, kern.nr, s.kc
	for ic := 0; ic < m; ic += mcBlock {
		mc := min(mcBlock, m-ic)
		// The kernels read A's rows in place where they can: only a
		// transposed A, and a last panel of fewer than mr rows, are packed.
		packed := 0 // the first row of the block that is packed
		if !transA {
			packed = mc - mc%mr
		}
		packA(buf.a[packed*kc:], mr, transA, a, lda, ic+packed, s.pc, mc-packed, kc)
		// tile multiplies rows ir.. of the block by the panel of column jr.
		tile := func(ir, jr int) {
			cols := min(nr, s.nc-jr)
			k := kern.forCols(cols)
			// The kernels read and write whole panels and tiles: check
			// their last elements, as the assembly cannot.
			start := panelStart(jr, kc, nr)
			pb := &s.b[start : start+k.nr*kc][0]
			col := s.jc + jr
			var bias *float32
			if e != nil && e.Bias != nil {
				bias = &e.Bias[col:][:cols][0]
			}
			pa, ld := &buf.a[ir*kc : (ir+mr)*kc][0], kc
			if ir < packed {
				row := (ic+ir)*lda + s.pc
				pa, ld = &a[row : row+(mr-1)*lda+kc][0], lda
			}
			off := (ic+ir)*ldc + col
			rows := min(mr, mc-ir)
			if cols == k.nr && (rows == mr || k.tails != nil) {
				run := k.run
				if rows < mr {
					run = k.tails[rows]
				}
				_ = c[off+(rows-1)*ldc+k.nr-1]
				run(kc, pa, ld, pb, &c[off], ldc, bias, accumulate)
				e.gelu(c[off:], ldc, rows, cols)
				return
			}
			t := buf.tile[:mr*k.nr]
			k.run(kc, pa, ld, pb, &t[0], k.nr, nil, false)
			for r := range rows {
				cr := c[off+r*ldc : off+r*ldc+cols]
				tr := t[r*k.nr : r*k.nr+cols]
				if !accumulate {
					copy(cr, tr)
				} else {
					for j, v := range tr {
						cr[j] += v
					}
				}
				if bias != nil {
					for j, v := range e.Bias[col : col+cols] {
						cr[j] += v
					}
				}
			}
			e.gelu(c[off:], ldc, rows, cols)
		}
		// Chunks of B's panels outside, A's row tiles inside them, the
		// chunk's panels innermost (see microKernel.chunk).
		chunk := max(kern.chunk, 1) * nr
		for j0 := 0; j0 < s.nc; j0 += chunk {
			for ir := 0; ir < mc; ir += mr {
				for jr := j0; jr < min(j0+chunk, s.nc); jr += nr {
					tile(ir, jr)
				}
			}
		}
	}
}

// packA writes op(A)[ic:ic+mc, pc:pc+kc] as mr-row panels, each row-major
// with kc floats a row; rows past mc are zero.
func packA(dst []float32, mr int, trans bool, a []float32, lda, ic, pc, mc, kc int) {
	for i0 := 0; i0 < mc; i0 += mr {
		panel := dst[i0*kc : (i0+mr)*kc]
		rows := min(mr, mc-i0)
		if rows < mr {
			clear(panel[rows*kc:])
		}
		for r := range rows {
			d := panel[r*kc : (r+1)*kc]
			if !trans {
				copy(d, a[(ic+i0+r)*lda+pc:][:kc])
				continue
			}
			for p := range d {
				d[p] = a[(pc+p)*lda+ic+i0+r]
			}
		}
	}
}

// packB writes alpha·op(B)[pc:pc+kc, jc:jc+nc] as panels of kern.nr
// columns, each k step holding nr consecutive values, but for the last
// panel, packed at the width of kern.forCols; columns past nc are zero.
func packB(dst []float32, kern *microKernel, trans bool, alpha float32, b []float32, ldb, pc, jc, kc, nc int) {
	nr := kern.nr
	step := panelStride(kc, nr)
	whole := nc / nr
	if last := nc - whole*nr; last > 0 {
		w := kern.forCols(last).nr
		clear(dst[whole*step:][:w*kc])
	}
	// width is the width panel j0 is packed at.
	width := func(j0 int) int { return kern.forCols(min(nr, nc-j0)).nr }
	if trans {
		for j0 := 0; j0 < nc; j0 += nr {
			transposeScaled(dst[panelStart(j0, kc, nr):], width(j0), b[(jc+j0)*ldb+pc:], ldb, kc, min(nr, nc-j0), alpha)
		}
		return
	}
	if alpha == 1 && whole > 0 && kc > 0 {
		src := b[pc*ldb+jc : (pc+kc-1)*ldb+jc+whole*nr]
		if fastPackRows != nil && nr%8 == 0 { // its loops copy 8 floats at a time, at least once
			_ = dst[(whole-1)*step+nr*kc-1]
			fastPackRows(&dst[0], &src[0], ldb, kc, whole, nr, step)
		} else {
			packRowsGo(dst, src, ldb, kc, whole, nr, step)
		}
	} else {
		whole = 0
	}
	// The last, narrower panel, and every panel of a scaled B.
	for j0 := whole * nr; j0 < nc; j0 += nr {
		w := width(j0)
		for p := range kc {
			d := dst[panelStart(j0, kc, nr)+p*w:][:min(nr, nc-j0)]
			for j, v := range b[(pc+p)*ldb+jc+j0:][:len(d)] {
				d[j] = alpha * v
			}
		}
	}
}

// transposeScaled sets dst[p*ldd+j] = alpha*src[j*lds+p] for p < rows and
// j < cols, in 8x8 blocks where the CPU has the kernel.
func transposeScaled(dst []float32, ldd int, src []float32, lds, rows, cols int, alpha float32) {
	rows8, cols8 := 0, 0
	if fastTranspose8 != nil {
		rows8, cols8 = rows&^7, cols&^7
	}
	for j := 0; j < cols8; j += 8 {
		for p := 0; p < rows8; p += 8 {
			_, _ = src[(j+7)*lds+p+7], dst[(p+7)*ldd+j+7]
			fastTranspose8(&dst[p*ldd+j], ldd, &src[j*lds+p], lds, alpha)
		}
	}
	// What the blocks leave: the last rows of the first cols8 columns, and
	// every row of the columns after them.
	for j := range cols {
		p0 := 0
		if j < cols8 {
			p0 = rows8
		}
		for p := p0; p < rows; p++ {
			dst[p*ldd+j] = alpha * src[j*lds+p]
		}
	}
}

// packRowsGo is the portable form of packRows: it packs panels whole
// panels of nr columns of the kc rows of src, ldb apart, each step floats
// after the one before it, row by row of src, so that the reads are
// sequential (a panel at a time, kc rows a stride apart, measured 3x slower).
func packRowsGo(dst, src []float32, ldb, kc, panels, nr, step int) {
	for p := range kc {
		row := src[p*ldb:][:panels*nr]
		for j := range panels {
			copy(dst[j*step+p*nr:][:nr], row[j*nr:])
		}
	}
}

// minWorkerFlops is the least work worth waking a core for: one head's
// attention product (5 MFLOP) ran 10-15% slower on two cores than on one.
// A variable so that tests can split small products.
var minWorkerFlops = 16 << 20

// shares is how many goroutines split units of a product of flops: at
// most workers (< 1: GOMAXPROCS), one a unit, none with less than
// minWorkerFlops.
func shares(workers, units, flops int) int {
	if workers < 1 {
		workers = runtime.GOMAXPROCS(0)
	}
	return min(workers, units, max(1, flops/minWorkerFlops))
}

// GemmParallel is Gemm split over workers goroutines (workers < 1 means
// GOMAXPROCS). Each output element is computed by exactly the same
// operations whatever the split, so the result does not depend on workers.
func GemmParallel(workers int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gemmParallel(gemmKernelFor(n), workers, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func gemmParallel(kern *microKernel, workers int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if workers < 1 {
		workers = runtime.GOMAXPROCS(0)
	}
	// Split columns in steps of the kernel's panel width when there are
	// enough of them, else rows in steps of its panel height, so that no
	// share but the last has an edge panel.
	colStep, rowStep := 32, 12
	if kern != nil {
		colStep, rowStep = kern.nr, kern.mr
	}
	byCols := n >= workers*colStep
	units := (m + rowStep - 1) / rowStep
	if byCols {
		units = (n + colStep - 1) / colStep
	}
	workers = shares(workers, units, 2*m*n*k)
	if workers <= 1 {
		gemm(kern, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	share := func(w int) {
		lo, hi := w*units/workers, (w+1)*units/workers
		if byCols {
			j0, j1 := lo*colStep, min(hi*colStep, n)
			bs := b[j0:]
			if transB {
				bs = b[j0*ldb:]
			}
			gemm(kern, transA, transB, m, j1-j0, k, alpha, a, lda, bs, ldb, beta, c[j0:], ldc)
			return
		}
		i0, i1 := lo*rowStep, min(hi*rowStep, m)
		as := a[i0:]
		if !transA {
			as = a[i0*lda:]
		}
		gemm(kern, transA, transB, i1-i0, n, k, alpha, as, lda, b, ldb, beta, c[i0*ldc:], ldc)
	}
	Parallel(workers, share)
}
