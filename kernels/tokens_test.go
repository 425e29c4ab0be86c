package kernels

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// iota32 is 0, 1, ..., n-1, so a patch's values name the pixels it took.
func iota32(n int) []float32 {
	xs := make([]float32, n)
	for i := range xs {
		xs[i] = float32(i)
	}
	return xs
}

func TestPatches(t *testing.T) {
	for _, tc := range []struct {
		name               string
		chans, size, patch int
		want               []float32
	}{
		{"one channel", 1, 4, 2, []float32{0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15}},
		{"two channels", 2, 4, 2, []float32{
			0, 1, 4, 5, 16, 17, 20, 21,
			2, 3, 6, 7, 18, 19, 22, 23,
			8, 9, 12, 13, 24, 25, 28, 29,
			10, 11, 14, 15, 26, 27, 30, 31,
		}},
		{"one pixel patches", 2, 2, 1, []float32{0, 4, 1, 5, 2, 6, 3, 7}},
		{"one patch", 2, 2, 2, []float32{0, 1, 2, 3, 4, 5, 6, 7}},
		{"size not a multiple of patch", 1, 3, 2, []float32{0, 1, 3, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := make([]float32, len(tc.want)+1)
			for i := range dst {
				dst[i] = -1
			}
			Patches(dst[:len(tc.want)], iota32(tc.chans*tc.size*tc.size), tc.chans, tc.size, tc.patch)
			assert.Equal(t, tc.want, dst[:len(tc.want)])
			assert.Equal(t, float32(-1), dst[len(tc.want)], "wrote past the patches")
		})
	}
}

func TestDropTokens(t *testing.T) {
	// Four tokens of two values: CLS, then tokens 1..3.
	x4 := []float32{1, 2, 3, 4, 5, 6, 7, 8}
	for _, tc := range []struct {
		name    string
		x       []float32
		n, dim  int
		scores  []float32
		kept    int
		want    []float32
		wantPos []int
	}{
		{"keep one", x4, 4, 2, []float32{0.5, 0.25, 0.75}, 1,
			[]float32{1, 2, 7, 8, 0.5*3 + 0.25*5, 0.5*4 + 0.25*6}, []int{3}},
		{"keep two, descending", x4, 4, 2, []float32{0.5, 0.25, 0.75}, 2,
			[]float32{1, 2, 7, 8, 3, 4, 0.25 * 5, 0.25 * 6}, []int{3, 1}},
		{"ties to lower index", x4, 4, 2, []float32{0.5, 0.5, 0.5}, 1,
			[]float32{1, 2, 3, 4, 0.5*5 + 0.5*7, 0.5*6 + 0.5*8}, []int{1}},
		{"not renormalised, negative and zero scores", x4, 4, 2, []float32{-1, 0, 2}, 1,
			[]float32{1, 2, 7, 8, -3, -4}, []int{3}},
		// Summed in score order the fused token would be 1; in token order
		// 1 is lost to rounding against 1e8.
		{"fused in token order", []float32{0, 1, 5e7, -2.5e7, 9}, 5, 1, []float32{1, 2, 4, 8}, 1,
			[]float32{0, 9, 0}, []int{4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := make([]float32, len(tc.want)+1)
			for i := range dst {
				dst[i] = 99 // DropTokens overwrites, the fused token included
			}
			pos := DropTokens(dst[:len(tc.want)], tc.x, tc.n, tc.dim, tc.scores, tc.kept)
			assert.Equal(t, tc.wantPos, pos)
			assert.Equal(t, tc.want, dst[:len(tc.want)])
			assert.Equal(t, float32(99), dst[len(tc.want)], "wrote past the tokens")
		})
	}
}

func TestDropTokensPanics(t *testing.T) {
	x := make([]float32, 4*2)
	scores := make([]float32, 3)
	for _, kept := range []int{-1, 0, 3, 4} {
		assert.Panics(t, func() { DropTokens(make([]float32, 12), x, 4, 2, scores, kept) }, "kept %d", kept)
	}
}
