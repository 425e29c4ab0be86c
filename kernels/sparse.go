package kernels

import "fmt"

// BlockSparse is a K×N weight matrix stored as its non-zero B×B blocks,
// grouped by block-column (the order a matmul engine consumes them).
// Zero blocks are neither stored nor touched.
type BlockSparse struct {
	Rows, Cols, B int
	// ColStart[j]:ColStart[j+1] index the stored blocks of block-column j.
	ColStart []int32
	// RowBlock[t] is the block-row of stored block t.
	RowBlock []int32
	// Data holds block t at Data[t*B*B:(t+1)*B*B], row-major.
	Data []float32
}

// PackBlockSparse packs the dense rows×cols matrix w, keeping the blocks for
// which keep(blockRow, blockCol) is true (keep == nil keeps every block).
func PackBlockSparse(w []float32, rows, cols, b int, keep func(br, bc int) bool) (*BlockSparse, error) {
	if b <= 0 || rows%b != 0 || cols%b != 0 {
		return nil, fmt.Errorf("pack block-sparse: block %d does not tile %dx%d", b, rows, cols)
	}
	if len(w) != rows*cols {
		return nil, fmt.Errorf("pack block-sparse: have %d values for %dx%d", len(w), rows, cols)
	}
	s := &BlockSparse{Rows: rows, Cols: cols, B: b, ColStart: make([]int32, cols/b+1)}
	for bc := range cols / b {
		for br := range rows / b {
			if keep != nil && !keep(br, bc) {
				continue
			}
			s.RowBlock = append(s.RowBlock, int32(br))
			for i := range b {
				row := w[(br*b+i)*cols+bc*b:]
				s.Data = append(s.Data, row[:b]...)
			}
		}
		s.ColStart[bc+1] = int32(len(s.RowBlock))
	}
	return s, nil
}

// NNZBlocks is the number of stored blocks.
func (s *BlockSparse) NNZBlocks() int { return len(s.RowBlock) }

// MulBlockColumn computes columns [bc*B, (bc+1)*B) of C = A·S for the m rows
// of A (m×Rows, leading dimension lda), writing them into c (leading dimension ldc).
// This is the work of one output block-column, as a matmul engine does it.
func (s *BlockSparse) MulBlockColumn(c []float32, ldc int, a []float32, lda, m, bc int) {
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
				for j, wv := range blk[p*b : p*b+b] {
					ci[j] += av * wv
				}
			}
		}
	}
}

// MatMul computes C[m×Cols] = A[m×Rows]·S, overwriting C.
func (s *BlockSparse) MatMul(c, a []float32, m int) {
	for bc := range s.Cols / s.B {
		s.MulBlockColumn(c, s.Cols, a, s.Rows, m, bc)
	}
}
