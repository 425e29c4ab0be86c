package kernels

import "fmt"

// Epilogue is what a product applies to its output once it is final,
// while each tile is still in cache: a bias added to every row, then GELU.
// The values are those of separate AddBias and GELU passes (GELU's value
// does not depend on where in a slice it is computed).
type Epilogue struct {
	Bias []float32 // one value a column of C; nil adds none
	GELU bool
}

// gelu applies e's GELU, if any, to the rows×cols tile of C at c, rows ldc apart.
func (e *Epilogue) gelu(c []float32, ldc, rows, cols int) {
	if e == nil || !e.GELU {
		return
	}
	for r := range rows {
		row := c[r*ldc : r*ldc+cols]
		GELU(row, row)
	}
}

// apply is the epilogue as passes over all of the m×n matrix C, for the
// paths that have no tiles.
func (e *Epilogue) apply(c []float32, ldc, m, n int) {
	if e == nil {
		return
	}
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		if e.Bias != nil {
			AddBias(row, e.Bias[:n], 1, n)
		}
	}
	e.gelu(c, ldc, m, n)
}

// Packed is a k×n right-hand operand packed once, in the slabs that Gemm
// packs on every call, for the micro-kernel this CPU runs: a model's
// weights, multiplied image after image. Packing them every call cost a
// tenth of a DeiT-S forward.
type Packed struct {
	k, n  int
	kern  *microKernel
	slabs []slab    // in the order Gemm visits them: by columns, then by k
	dense []float32 // without a micro-kernel, B itself (K×N), for the portable loops
}

// K and N are the operand's rows and columns.
func (p *Packed) K() int { return p.k }
func (p *Packed) N() int { return p.n }

// PackB packs the k×n row-major matrix b, whose rows are ldb floats apart.
// It panics, as Gemm does, if b is too short.
func PackB(b []float32, k, n, ldb int) *Packed {
	if k < 0 || n < 0 {
		panic(fmt.Sprintf("kernels: packing a %dx%d matrix", k, n))
	}
	checkMatrix("B", k, n, ldb, len(b))
	return packWith(gemmKernelFor(n), b, k, n, ldb)
}

// packWith is PackB for the given micro-kernel (nil: the portable loops).
func packWith(kern *microKernel, b []float32, k, n, ldb int) *Packed {
	p := &Packed{k: k, n: n, kern: kern}
	if p.kern == nil {
		p.dense = make([]float32, k*n)
		for i := range k {
			copy(p.dense[i*n:(i+1)*n], b[i*ldb:])
		}
		return p
	}
	for jc := 0; jc < n; jc += ncBlock {
		nc := min(ncBlock, n-jc)
		for pc := 0; pc < k; pc += kcBlock {
			kc := min(kcBlock, k-pc)
			s := slab{b: make([]float32, slabFloats(p.kern, kc, nc)), pc: pc, kc: kc, jc: jc, nc: nc}
			packB(s.b, p.kern, false, 1, b, ldb, pc, jc, kc, nc)
			p.slabs = append(p.slabs, s)
		}
	}
	return p
}

// Mul writes A·P into C and applies e (nil: none): A is m×K with rows lda
// floats apart, C m×N with rows ldc apart. Large products are split by
// columns over workers goroutines (< 1: GOMAXPROCS); every element is
// computed by the same operations whatever the split. It panics, as Gemm
// does, if a or c is too short.
func (p *Packed) Mul(workers, m int, a []float32, lda int, c []float32, ldc int, e *Epilogue) {
	if m < 0 {
		panic(fmt.Sprintf("kernels: product with %d rows", m))
	}
	checkMatrix("A", m, p.k, lda, len(a))
	checkMatrix("C", m, p.n, ldc, len(c))
	if e != nil && e.Bias != nil && len(e.Bias) < p.n {
		panic(fmt.Sprintf("kernels: epilogue bias has %d values for %d columns", len(e.Bias), p.n))
	}
	if m == 0 || p.n == 0 {
		return
	}
	if p.kern == nil || p.k == 0 {
		// Gemm's portable loops (or, for K = 0, its clearing of C).
		gemm(nil, false, false, m, p.n, p.k, 1, a, lda, p.dense, p.n, 0, c, ldc)
		e.apply(c, ldc, m, p.n)
		return
	}
	nr := p.kern.nr
	units := (p.n + nr - 1) / nr
	workers = shares(workers, units, 2*m*p.n*p.k)
	share := func(w int) {
		c0, c1 := w*units/workers*nr, min((w+1)*units/workers*nr, p.n)
		buf := packPool.Get().(*packBuffers)
		defer packPool.Put(buf)
		for _, s := range p.slabs {
			lo, hi := max(c0, s.jc), min(c1, s.jc+s.nc)
			if lo >= hi {
				continue
			}
			part := slab{b: s.b[panelStart(lo-s.jc, s.kc, nr):], pc: s.pc, kc: s.kc, jc: lo, nc: hi - lo}
			var last *Epilogue
			if s.pc+s.kc == p.k {
				last = e
			}
			sweep(p.kern, buf, part, false, m, a, lda, c, ldc, s.pc > 0, last)
		}
	}
	Parallel(workers, share)
}
