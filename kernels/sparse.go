package kernels

import (
	"fmt"
	"runtime"
	"slices"
	"sort"
)

// BlockSparse is a K×N weight matrix stored as its non-zero B×B blocks,
// grouped by block-column (the order a matmul engine consumes them).
// Zero blocks are neither stored nor touched.
type BlockSparse struct {
	Rows, Cols, B int
	// ColStart[j]:ColStart[j+1] index the stored blocks of block-column j.
	ColStart []int32
	// RowBlock[t] is the block-row of stored block t.
	RowBlock []int32
	// Data holds block t at Data[t*B*B:(t+1)*B*B]: row-major, or with each
	// group of Interleave rows interleaved value by value (g = Interleave:
	// W[g*q+r][j] at g*q*B+g*j+r). At reads any.
	Data []float32
	// Interleave is the layout of the SIMD kernel this machine runs for B
	// (blockColumnKernel.interleave): 2 or 4 when it takes that many k
	// steps a row in one FMA, 0 or 1 for row-major. Packing writes it so,
	// rather than a row-major copy beside it.
	Interleave int
}

// layout is the Interleave that the SIMD kernel for b reads.
func layout(b int) int {
	if k := fastBlockColumn(b); k != nil && k.interleave > 1 {
		return k.interleave
	}
	return 1
}

// group is s's Interleave, 1 for row-major.
func (s *BlockSparse) group() int { return max(s.Interleave, 1) }

// At returns row i, column j of stored block t.
func (s *BlockSparse) At(t, i, j int) float32 { return s.Data[t*s.B*s.B+s.offset(i, j)] }

// offset is the position of row i, column j within a block of s's layout.
func (s *BlockSparse) offset(i, j int) int {
	g := s.group()
	return i/g*g*s.B + g*j + i%g
}

// PackBlockSparse packs the dense rows×cols matrix w, keeping the blocks for
// which keep(blockRow, blockCol) is true (keep == nil keeps every block).
func PackBlockSparse(w []float32, rows, cols, b int, keep func(br, bc int) bool) (*BlockSparse, error) {
	if len(w) != rows*cols {
		return nil, fmt.Errorf("pack block-sparse: have %d values for %dx%d", len(w), rows, cols)
	}
	return PackSelected(Selection{Data: w, Stride: cols}, rows, cols, b, keep)
}

// Selection picks rows and columns of a row-major matrix without copying
// it: element (i, j) of the selection is Data[Rows[i]*Stride+Cols[j]]. An
// index of -1 reads zero (padding); a nil Rows or Cols picks every row or
// column in order.
type Selection struct {
	Data       []float32
	Stride     int
	Rows, Cols []int
}

// PackSelected packs the rows×cols matrix that sel picks, keeping the blocks
// for which keep(blockRow, blockCol) is true (keep == nil keeps every
// block). It reads only the kept blocks, so a pruned model packs straight
// from its dense weights.
func PackSelected(sel Selection, rows, cols, b int, keep func(br, bc int) bool) (*BlockSparse, error) {
	if err := tiles(rows, cols, b); err != nil {
		return nil, err
	}
	if err := sel.check(rows, cols); err != nil {
		return nil, fmt.Errorf("pack block-sparse: %w", err)
	}
	// Number the kept blocks first, so that the storage is allocated once.
	s, slot := pattern(rows, cols, b, keep)
	nbc := cols / b
	s.Data = make([]float32, len(s.RowBlock)*b*b)
	s.Interleave = layout(b)
	// A block-column whose columns are contiguous in the source is copied a
	// row segment at a time; any other is gathered, faster without padding.
	const gather, gatherPadded = -1, -2
	first := make([]int, nbc) // source column of the block-column's first column, or how to gather it
	for bc := range nbc {
		first[bc] = bc * b
		if c := sel.Cols; c != nil {
			cols := c[bc*b : bc*b+b]
			first[bc] = cols[0]
			for j, c := range cols {
				if c != cols[0]+j || c < 0 {
					first[bc] = gather
					if slices.Contains(cols, -1) {
						first[bc] = gatherPadded
					}
					break
				}
			}
		}
	}
	// Copy row by row, reading the source in order.
	for r := range rows {
		src := r
		if sel.Rows != nil {
			if src = sel.Rows[r]; src < 0 {
				continue // a padding row stays zero
			}
		}
		row := sel.Data[src*sel.Stride:]
		br, i := r/b, r%b
		// Row i of a block starts at off and steps by step (the interleave).
		off, step := s.offset(i, 0), s.offset(i, 1)-s.offset(i, 0)
		for bc := range nbc {
			t := slot[br*nbc+bc]
			if t < 0 {
				continue
			}
			blk := s.Data[int(t)*b*b : int(t+1)*b*b]
			switch c := first[bc]; {
			case c >= 0 && step == 1:
				copy(blk[off:off+b], row[c:c+b])
			case c >= 0:
				for j, v := range row[c : c+b] {
					blk[off+step*j] = v
				}
			case c == gather && b == 16 && step == 1:
				d := (*[16]float32)(blk[off:])
				for j, c := range (*[16]int)(sel.Cols[bc*16:]) {
					d[j] = row[c]
				}
			case c == gather && b == 16 && step == 2:
				d := (*[31]float32)(blk[off:])
				for j, c := range (*[16]int)(sel.Cols[bc*16:]) {
					d[2*j] = row[c]
				}
			default:
				for j, c := range sel.Cols[bc*b : bc*b+b] {
					if c >= 0 {
						blk[off+step*j] = row[c]
					}
				}
			}
		}
	}
	return s, nil
}

// PackPattern is PackSelected without the values: the rows×cols matrix's
// kept blocks numbered as PackSelected numbers them (ColStart, RowBlock),
// and no Data. It is for a consumer that needs only which blocks are
// stored (a cost model, a schedule), not a product: it cannot be multiplied.
func PackPattern(rows, cols, b int, keep func(br, bc int) bool) (*BlockSparse, error) {
	if err := tiles(rows, cols, b); err != nil {
		return nil, err
	}
	s, _ := pattern(rows, cols, b, keep)
	return s, nil
}

// tiles reports whether blocks of side b tile a rows×cols matrix.
func tiles(rows, cols, b int) error {
	if b <= 0 || rows%b != 0 || cols%b != 0 {
		return fmt.Errorf("pack block-sparse: block %d does not tile %dx%d", b, rows, cols)
	}
	return nil
}

// pattern numbers the kept blocks of a rows×cols matrix by block-column,
// asking keep once per block, and returns them with each block's stored
// index (slot[br*(cols/b)+bc], -1 if dropped).
func pattern(rows, cols, b int, keep func(br, bc int) bool) (*BlockSparse, []int32) {
	nbr, nbc := rows/b, cols/b
	s := &BlockSparse{Rows: rows, Cols: cols, B: b, ColStart: make([]int32, nbc+1)}
	slot := make([]int32, nbr*nbc)
	for bc := range nbc {
		for br := range nbr {
			slot[br*nbc+bc] = -1
			if keep != nil && !keep(br, bc) {
				continue
			}
			slot[br*nbc+bc] = int32(len(s.RowBlock))
			s.RowBlock = append(s.RowBlock, int32(br))
		}
		s.ColStart[bc+1] = int32(len(s.RowBlock))
	}
	return s, slot
}

// check reports whether sel picks a rows×cols matrix inside its data.
func (sel Selection) check(rows, cols int) error {
	if sel.Stride <= 0 {
		return fmt.Errorf("stride %d must be positive", sel.Stride)
	}
	have := len(sel.Data) / sel.Stride // whole source rows
	if sel.Rows == nil && rows > have || sel.Rows != nil && len(sel.Rows) != rows {
		return fmt.Errorf("have %d values (%d rows of %d) for %d rows", len(sel.Data), have, sel.Stride, rows)
	}
	if sel.Cols == nil && cols > sel.Stride || sel.Cols != nil && len(sel.Cols) != cols {
		return fmt.Errorf("%d columns selected from rows of %d", cols, sel.Stride)
	}
	for _, r := range sel.Rows {
		if r < -1 || r >= have {
			return fmt.Errorf("row %d outside 0..%d", r, have-1)
		}
	}
	for _, c := range sel.Cols {
		if c < -1 || c >= sel.Stride {
			return fmt.Errorf("column %d outside 0..%d", c, sel.Stride-1)
		}
	}
	return nil
}

// FirstNonFinite returns the row and column of the first NaN or infinity
// among the stored blocks, in storage order, or -1, -1 if there is none.
func (s *BlockSparse) FirstNonFinite() (row, col int) {
	k := FirstNonFinite(s.Data)
	if k < 0 {
		return -1, -1
	}
	b, bb := s.B, s.B*s.B
	t, o := k/bb, k%bb
	g := s.group()
	i, j := o/(g*b)*g+o%g, o%(g*b)/g
	bc := sort.Search(len(s.ColStart)-1, func(j int) bool { return int(s.ColStart[j+1]) > t })
	return int(s.RowBlock[t])*b + i, bc*b + j
}

// NNZBlocks is the number of stored blocks.
func (s *BlockSparse) NNZBlocks() int { return len(s.RowBlock) }

// blockColumnKernel computes a tile of rows rows of one output block-column
// from nblk stored blocks, reading A directly and overwriting C.
type blockColumnKernel struct {
	rows       int
	interleave int // the BlockSparse.Interleave it reads: 2 or 4, or 0 for row-major
	run        func(a *float32, lda int, data *float32, rowBlock *int32, nblk int, c *float32, ldc int)
}

// MulBlockColumn computes columns [bc*B, (bc+1)*B) of C = A·S for the m rows
// of A (m×Rows, leading dimension lda), writing them into c (leading dimension ldc).
// This is the work of one output block-column, as a matmul engine does it.
// It panics if a slice is too short or s is inconsistent.
func (s *BlockSparse) MulBlockColumn(c []float32, ldc int, a []float32, lda, m, bc int) {
	s.mulColumns(fastBlockColumn(s.B), c, ldc, a, lda, m, bc, bc+1)
}

// mulColumns computes block-columns [bc0, bc1) of C = A·S on the given SIMD
// kernel (nil runs portable Go). It checks every bound and index that the
// SIMD kernels will read first.
func (s *BlockSparse) mulColumns(kern *blockColumnKernel, c []float32, ldc int, a []float32, lda, m, bc0, bc1 int) {
	b := s.B
	if m <= 0 || bc0 >= bc1 {
		return
	}
	s.checkColumns(c, ldc, a, lda, m, bc0, bc1)
	fast := kern != nil && m >= kern.rows && max(kern.interleave, 1) == s.group()
	for bc := bc0; bc < bc1; bc++ {
		if !fast || s.ColStart[bc] == s.ColStart[bc+1] {
			s.mulBlockColumnPortable(c, ldc, a, lda, m, bc)
		}
	}
	if !fast {
		return
	}
	// Chunks of block-columns outside (sparseChunkFloats), a tile of A's
	// rows inside them, the chunk's block-columns innermost: the tile stays
	// in L1 while every block-column meets it, and the chunk's blocks
	// stream from L2 in their stored order. The other way round, A came
	// from L2 at the stored blocks' scattered rows. The last tile overlaps
	// the one before it rather than running short: the kernel overwrites
	// C, so rows computed twice get the same values.
	for c0 := bc0; c0 < bc1; {
		c1 := c0 + 1
		for c1 < bc1 && int(s.ColStart[c1+1]-s.ColStart[c0])*b*b <= sparseChunkFloats {
			c1++
		}
		for i := 0; i < m; i += kern.rows {
			i = min(i, m-kern.rows)
			for bc := c0; bc < c1; bc++ {
				t0, t1 := int(s.ColStart[bc]), int(s.ColStart[bc+1])
				if t0 < t1 {
					kern.run(&a[i*lda], lda, &s.Data[t0*b*b], &s.RowBlock[t0], t1-t0, &c[i*ldc+bc*b], ldc)
				}
			}
		}
		c0 = c1
	}
}

// checkColumns panics unless A (m×Rows, leading dimension lda) and
// block-columns [bc0, bc1) of C (leading dimension ldc) fit their slices and
// s's indexes for those block-columns are in range: what the SIMD kernels
// will read.
func (s *BlockSparse) checkColumns(c []float32, ldc int, a []float32, lda, m, bc0, bc1 int) {
	b := s.B
	if lda < s.Rows || (m-1)*lda+s.Rows > len(a) {
		panic(fmt.Sprintf("kernels: block-sparse A is %dx%d with leading dimension %d but has %d values", m, s.Rows, lda, len(a)))
	}
	for bc := bc0; bc < bc1; bc++ {
		if bc < 0 || bc >= s.Cols/b || ldc < (bc+1)*b || (m-1)*ldc+(bc+1)*b > len(c) {
			panic(fmt.Sprintf("kernels: block-sparse C block-column %d of %dx%d with leading dimension %d does not fit %d values", bc, m, s.Cols, ldc, len(c)))
		}
		t0, t1 := int(s.ColStart[bc]), int(s.ColStart[bc+1])
		if t0 > t1 || t1 > len(s.RowBlock) || t1*b*b > len(s.Data) {
			panic(fmt.Sprintf("kernels: block-sparse block-column %d indexes blocks %d..%d of %d", bc, t0, t1, len(s.RowBlock)))
		}
		for _, rb := range s.RowBlock[t0:t1] {
			if rb < 0 || int(rb) >= s.Rows/b {
				panic(fmt.Sprintf("kernels: block-sparse block-row %d outside %d block-rows", rb, s.Rows/b))
			}
		}
	}
}

// sparseChunkFloats bounds the stored blocks that one sweep of A's row tiles
// meets: 256 KB, which stays in a 1 MB L2 beside a DeiT-S activation (197×384,
// 300 KB). Unbounded, a 384×1536 weight at density 0.5 (1.2 MB) streamed
// from L3 once a tile: chunked, b=32 ran 2.19-2.20x dense against
// 1.92-1.94x, b=16 2.20-2.21x against 2.12-2.19x, b=8 1.72-1.75x against
// 1.77-1.80x (BenchmarkBlockSparseVsDense, Zen 5, 21:49).
const sparseChunkFloats = 256 << 10 / 4

func (s *BlockSparse) mulBlockColumnPortable(c []float32, ldc int, a []float32, lda, m, bc int) {
	b := s.B
	for i := range m {
		clear(c[i*ldc+bc*b : i*ldc+bc*b+b])
	}
	for t := s.ColStart[bc]; t < s.ColStart[bc+1]; t++ {
		blk := s.Data[int(t)*b*b : int(t+1)*b*b]
		k0 := int(s.RowBlock[t]) * b
		for i := range m {
			ci := c[i*ldc+bc*b : i*ldc+bc*b+b]
			ai := a[i*lda+k0 : i*lda+k0+b]
			for p, av := range ai {
				off, step := s.offset(p, 0), s.offset(p, 1)-s.offset(p, 0)
				for j := range ci {
					ci[j] += av * blk[off+step*j]
				}
			}
		}
	}
}

// MatMul computes C[m×Cols] = A[m×Rows]·S, overwriting C.
func (s *BlockSparse) MatMul(c, a []float32, m int) {
	s.matMul(fastBlockColumn(s.B), c, a, m)
}

// MatMulParallel is MatMul with the block-columns split over workers
// goroutines (workers < 1 means GOMAXPROCS). Each block-column is computed
// by one worker with the same kernel as MatMul's, so the result is
// bit-identical to MatMul's whatever the split.
func (s *BlockSparse) MatMulParallel(workers int, c, a []float32, m int) {
	s.matMulParallel(fastBlockColumn(s.B), workers, c, a, m)
}

func (s *BlockSparse) matMulParallel(kern *blockColumnKernel, workers int, c, a []float32, m int) {
	if workers < 1 {
		workers = runtime.GOMAXPROCS(0)
	}
	cols := s.Cols / s.B
	workers = min(workers, cols)
	if workers <= 1 || m < 1 || (kern != nil && m < kern.rows) {
		s.matMul(kern, c, a, m)
		return
	}
	// Checked here as well as in the shares: a panic on the caller's
	// goroutine can be recovered, one in a share ends the program.
	s.checkColumns(c, s.Cols, a, s.Rows, m, 0, cols)
	Parallel(workers, func(w int) {
		s.mulColumns(kern, c, s.Cols, a, s.Rows, m, w*cols/workers, (w+1)*cols/workers)
	})
}

func (s *BlockSparse) matMul(kern *blockColumnKernel, c, a []float32, m int) {
	if kern != nil && m > 0 && m < kern.rows {
		// Fewer rows than the SIMD kernel's tile (a sequence's last row
		// block): compute a zero-padded copy on it rather than in portable
		// Go, which is an order of magnitude slower per row.
		pa := make([]float32, kern.rows*s.Rows)
		copy(pa, a[:m*s.Rows])
		pc := make([]float32, kern.rows*s.Cols)
		s.matMul(kern, pc, pa, kern.rows)
		copy(c[:m*s.Cols], pc)
		return
	}
	s.mulColumns(kern, c, s.Cols, a, s.Rows, m, 0, s.Cols/s.B)
}
