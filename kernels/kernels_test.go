package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// elementShapes are rows×cols of the row-wise kernels: odd widths, attention
// rows and DeiT-S activations.
var elementShapes = [][2]int{{1, 1}, {1, 7}, {7, 17}, {3, 33}, {197, 384}, {198, 198}, {198, 1536}}

// elementwisePaths are the element-wise kernel sets this machine can run.
func elementwisePaths() map[string]elementwise {
	paths := simdElementwise()
	paths["portable"] = elementwise{}
	return paths
}

func TestSoftmaxRows(t *testing.T) {
	for name, simd := range elementwisePaths() {
		for _, s := range elementShapes {
			rows, cols := s[0], s[1]
			t.Run(fmt.Sprintf("%s/%dx%d", name, rows, cols), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(rows), uint64(cols)))
				x := randSlice(rng, rows*cols)
				for i := range x {
					x[i] *= 20
				}
				want := softmaxRef(x, rows, cols)
				softmaxRows(simd, x, rows, cols)
				for i := range x {
					require.InDelta(t, want[i], x[i], 1e-6+1e-5*want[i], "element %d", i)
				}
			})
		}
	}
}

func softmaxRef(x []float32, rows, cols int) []float64 {
	out := make([]float64, len(x))
	for r := range rows {
		mx := math.Inf(-1)
		for _, v := range x[r*cols : (r+1)*cols] {
			mx = max(mx, float64(v))
		}
		var sum float64
		for j, v := range x[r*cols : (r+1)*cols] {
			out[r*cols+j] = math.Exp(float64(v) - mx)
			sum += out[r*cols+j]
		}
		for j := range cols {
			out[r*cols+j] /= sum
		}
	}
	return out
}

func TestSoftmaxStability(t *testing.T) {
	for name, simd := range elementwisePaths() {
		for _, tc := range []struct {
			name string
			in   []float32
			want []float64
		}{
			{"huge equal", []float32{3e38, 3e38}, []float64{0.5, 0.5}},
			{"huge and tiny", []float32{-3e38, 3e38, 0}, []float64{0, 1, 0}},
			{"minus infinity masked", []float32{float32(math.Inf(-1)), 1, 1}, []float64{0, 0.5, 0.5}},
			{"large offset", []float32{1000, 1000 + float32(math.Log(3))}, []float64{0.25, 0.75}},
			{"very negative", []float32{-1e4, -1e4 - float32(math.Log(3))}, []float64{0.75, 0.25}},
			{"17 wide, one huge", append(make([]float32, 16), 1e30), append(make([]float64, 16), 1)},
		} {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				x := append([]float32(nil), tc.in...)
				softmaxRows(simd, x, 1, len(x))
				for i, v := range x {
					require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0), "element %d is %v", i, v)
					assert.InDelta(t, tc.want[i], v, 1e-3, "element %d", i)
				}
			})
		}
		t.Run(name+"/NaN propagates", func(t *testing.T) {
			x := []float32{1, float32(math.NaN()), 2}
			softmaxRows(simd, x, 1, 3)
			assert.True(t, math.IsNaN(float64(x[0])), "got %v", x)
		})
	}
}

func TestLayerNorm(t *testing.T) {
	for _, s := range elementShapes {
		rows, cols := s[0], s[1]
		t.Run(fmt.Sprintf("%dx%d", rows, cols), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(rows), uint64(cols)+1))
			x := randSlice(rng, rows*cols)
			for i := range x {
				x[i] = 3 + 5*x[i] // an offset mean, as residual streams have
			}
			gamma, beta := randSlice(rng, cols), randSlice(rng, cols)
			if cols > 1 { // a row whose mean is exactly zero
				x[0], x[1] = 1, -1
				for j := 2; j < cols; j++ {
					x[j] = 0
				}
			}
			const eps = 1e-6
			want := make([]float64, len(x))
			for r := range rows {
				var mean, variance float64
				for _, v := range x[r*cols : (r+1)*cols] {
					mean += float64(v)
				}
				mean /= float64(cols)
				for _, v := range x[r*cols : (r+1)*cols] {
					variance += (float64(v) - mean) * (float64(v) - mean)
				}
				variance /= float64(cols)
				for j, v := range x[r*cols : (r+1)*cols] {
					want[r*cols+j] = (float64(v)-mean)/math.Sqrt(variance+eps)*float64(gamma[j]) + float64(beta[j])
				}
			}
			LayerNorm(x, x, gamma, beta, rows, cols, eps) // in place
			for i := range x {
				require.InDelta(t, want[i], x[i], 1e-5, "element %d", i)
			}
		})
	}
}

func TestGELU(t *testing.T) {
	xs := []float32{0, 1, -1, 0.5, -0.5, 3, -3, 6, -6, 10, -10, 1e-8, -1e-8, 40, -40}
	rng := rand.New(rand.NewPCG(5, 5))
	for range 2000 {
		xs = append(xs, (rng.Float32()*2-1)*8)
	}
	for name, simd := range elementwisePaths() {
		t.Run(name, func(t *testing.T) {
			got := make([]float32, len(xs))
			gelu(simd, got, xs)
			for i, x := range xs {
				want := 0.5 * float64(x) * (1 + math.Erf(float64(x)/math.Sqrt2))
				require.InDelta(t, want, got[i], 1e-6+2e-6*math.Abs(want), "GELU(%g)", x)
			}
			nan := make([]float32, 16)
			nan[3] = float32(math.NaN())
			gelu(simd, nan, nan)
			assert.True(t, math.IsNaN(float64(nan[3])), "NaN in, NaN out")
			assert.Equal(t, float32(0), nan[4])
			// A value's GELU does not depend on where it sits: in rows of
			// any length (tails included), the bits of the whole slice's.
			for _, cols := range []int{1, 7, 16, 23, 151} {
				rows := make([]float32, len(xs))
				for r := 0; r < len(xs); r += cols {
					end := min(r+cols, len(xs))
					gelu(simd, rows[r:end], xs[r:end])
				}
				require.Equal(t, got, rows, "rows of %d", cols)
			}
		})
	}
}

func TestAddBiasAndAdd(t *testing.T) {
	x := []float32{1, 2, 3, 4, 5, 6}
	AddBias(x, []float32{10, 20, 30}, 2, 3)
	assert.Equal(t, []float32{11, 22, 33, 14, 25, 36}, x)
	dst := make([]float32, 3)
	Add(dst, []float32{1, 2, 3}, []float32{0.5, -2, 4})
	assert.Equal(t, []float32{1.5, 0, 7}, dst)
	Add(x[:3], x[:3], x[3:]) // aliasing dst and a
	assert.Equal(t, []float32{25, 47, 69}, x[:3])
}

func TestTopK(t *testing.T) {
	for _, tc := range []struct {
		name   string
		scores []float32
		k      int
		want   []int
	}{
		{"descending", []float32{0.1, 0.9, 0.5, 0.7}, 3, []int{1, 3, 2}},
		{"ties to lower index", []float32{0.5, 0.9, 0.5, 0.9, 0.5}, 4, []int{1, 3, 0, 2}},
		{"all equal", []float32{2, 2, 2, 2}, 2, []int{0, 1}},
		{"k beyond length", []float32{1, 3}, 5, []int{1, 0}},
		{"k zero", []float32{1, 3}, 0, []int{}},
		{"negative and zero", []float32{-1, 0, -0.5}, 3, []int{1, 2, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, TopK(tc.scores, tc.k))
		})
	}
}

func TestPackBlockSparseErrors(t *testing.T) {
	for _, tc := range []struct {
		name             string
		n, rows, cols, b int
	}{
		{"block does not tile rows", 24 * 16, 24, 16, 16},
		{"zero block", 16 * 16, 16, 16, 0},
		{"wrong length", 10, 16, 16, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := PackBlockSparse(make([]float32, tc.n), tc.rows, tc.cols, tc.b, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "pack block-sparse")
		})
	}
	_, err := PackPattern(24, 16, 16, nil)
	assert.ErrorContains(t, err, "pack block-sparse: block 16 does not tile 24x16")
	s, err := PackBlockSparse(make([]float32, 32*48), 32, 48, 16, func(br, bc int) bool { return br != bc })
	require.NoError(t, err)
	assert.Equal(t, 4, s.NNZBlocks())
	assert.Equal(t, []int32{0, 1, 2, 4}, s.ColStart)
	assert.Equal(t, []int32{1, 0, 0, 1}, s.RowBlock)
}

func TestMulBlockColumnPanicsOnBadInput(t *testing.T) {
	s, err := PackBlockSparse(make([]float32, 32*32), 32, 32, 16, nil)
	require.NoError(t, err)
	a, c := make([]float32, 20*32), make([]float32, 20*32)
	require.NotPanics(t, func() { s.MulBlockColumn(c, 32, a, 32, 20, 1) })
	require.Panics(t, func() { s.MulBlockColumn(c, 32, a[:len(a)-1], 32, 20, 1) }, "short A")
	require.Panics(t, func() { s.MulBlockColumn(c[:len(c)-1], 32, a, 32, 20, 1) }, "short C")
	require.Panics(t, func() { s.MulBlockColumn(c, 32, a, 32, 20, 2) }, "block-column out of range")
	s.RowBlock[0] = 5
	require.Panics(t, func() { s.MulBlockColumn(c, 32, a, 32, 20, 0) }, "corrupt block-row")
}

func TestArgmax(t *testing.T) {
	for _, tc := range []struct {
		xs   []float32
		want int
	}{
		{nil, -1},
		{[]float32{3}, 0},
		{[]float32{1, 5, 2}, 1},
		{[]float32{-2, -1, -1}, 1}, // ties go to the first
		{[]float32{float32(math.Inf(-1)), -3e38}, 1},
	} {
		assert.Equal(t, tc.want, Argmax(tc.xs), "%v", tc.xs)
	}
}

// TestFirstNonFinite runs the fast path (where the CPU has one) and the
// portable one on the same cases.
func TestFirstNonFinite(t *testing.T) {
	paths := map[string]func([]float32) int{"fast": FirstNonFinite, "portable": firstNonFinitePortable}
	for name, FirstNonFinite := range paths {
		t.Run(name, func(t *testing.T) { testFirstNonFinite(t, FirstNonFinite) })
	}
}

func testFirstNonFinite(t *testing.T, FirstNonFinite func([]float32) int) {
	for _, tc := range []struct {
		name string
		at   int
		v    float32
		want int
	}{
		{"finite", 0, 3, -1},
		{"NaN in the first eight", 3, float32(math.NaN()), 3},
		{"infinity in the tail", 17, float32(math.Inf(-1)), 17},
		{"huge but finite", 9, math.MaxFloat32, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := make([]float32, 19)
			x[tc.at] = tc.v
			assert.Equal(t, tc.want, FirstNonFinite(x))
		})
	}
	x := make([]float32, 19)
	x[2], x[11] = float32(math.Inf(1)), float32(math.NaN())
	assert.Equal(t, 2, FirstNonFinite(x), "the first one")
	assert.Equal(t, -1, FirstNonFinite(nil))
	// Every position of a long slice, past the blocks and in the tail, and
	// the largest finite values beside it.
	long := make([]float32, 64*5+7)
	for i := range long {
		long[i] = math.MaxFloat32
		if i%2 == 1 {
			long[i] = -math.MaxFloat32
		}
	}
	require.Equal(t, -1, FirstNonFinite(long))
	for i := range long {
		for _, v := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
			old := long[i]
			long[i] = v
			require.Equal(t, i, FirstNonFinite(long), "at %d: %v", i, v)
			long[i] = old
		}
	}
	assert.Equal(t, -1, FirstNonFinite(long[1:]), "an odd start")
	for _, i := range []int{1, 2, 100, len(long) - 1} {
		long[i] = float32(math.NaN())
		assert.Equal(t, i-1, FirstNonFinite(long[1:]), "an odd start, NaN at %d", i)
		long[i] = 1
	}
}

// TestPackSelected packs selections of a 48×64 matrix and compares them with
// packing the selected matrix after gathering it by hand: every row and
// column, contiguous head-like column runs, single scattered columns (the
// neurons of a pruned MLP), and padding rows and columns.
func TestPackSelected(t *testing.T) {
	const srcRows, srcCols = 48, 64
	src := make([]float32, srcRows*srcCols)
	for i := range src {
		src[i] = float32(i + 1)
	}
	seq := func(from, n int) []int {
		s := make([]int, n)
		for i := range s {
			s[i] = from + i
		}
		return s
	}
	scattered := []int{1, 2, 5, 9, 10, 11, 12, 20, 33, 34, 40, 41, 50, 51, 60, 63}
	for _, tc := range []struct {
		name       string
		rows, cols []int
		nr, nc     int
	}{
		{"all", nil, nil, srcRows, srcCols},
		{"head columns", nil, append(seq(8, 16), seq(40, 16)...), srcRows, 32},
		{"scattered columns", nil, scattered, srcRows, 16},
		{"rows and padding", append(seq(16, 12), -1, -1, -1, -1), nil, 16, srcCols},
		{"padded columns", seq(0, 16), append(scattered[:12], -1, -1, -1, -1), 16, 16},
	} {
		for _, b := range []int{8, 16} { // 16 has its own gather
			t.Run(fmt.Sprintf("%s b=%d", tc.name, b), func(t *testing.T) {
				dense := make([]float32, tc.nr*tc.nc)
				for i := range tc.nr {
					r := i
					if tc.rows != nil {
						r = tc.rows[i]
					}
					for j := range tc.nc {
						c := j
						if tc.cols != nil {
							c = tc.cols[j]
						}
						if r >= 0 && c >= 0 {
							dense[i*tc.nc+j] = src[r*srcCols+c]
						}
					}
				}
				keep := func(br, bc int) bool { return (br+bc)%3 != 0 }
				want, err := PackBlockSparse(dense, tc.nr, tc.nc, b, keep)
				require.NoError(t, err)
				got, err := PackSelected(Selection{Data: src, Stride: srcCols, Rows: tc.rows, Cols: tc.cols}, tc.nr, tc.nc, b, keep)
				require.NoError(t, err)
				assert.Equal(t, want, got)
				// The pattern alone is the same structure without values.
				pat, err := PackPattern(tc.nr, tc.nc, b, keep)
				require.NoError(t, err)
				want.Data, want.Interleave = nil, 0
				assert.Equal(t, want, pat)
			})
		}
	}
	for _, tc := range []struct {
		name   string
		sel    Selection
		nr, nc int
		want   string
	}{
		{"too many rows", Selection{Data: src, Stride: srcCols}, srcRows + 8, srcCols, "rows"},
		{"row outside", Selection{Data: src, Stride: srcCols, Rows: append(seq(0, 7), srcRows)}, 8, srcCols, "row 48 outside"},
		{"column outside", Selection{Data: src, Stride: srcCols, Cols: append(seq(0, 7), -2)}, srcRows, 8, "column -2 outside"},
		{"columns beyond the stride", Selection{Data: src, Stride: srcCols}, srcRows, srcCols + 8, "columns"},
		{"no stride", Selection{Data: src}, 8, 8, "stride"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := PackSelected(tc.sel, tc.nr, tc.nc, 8, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestBlockSparseFirstNonFinite(t *testing.T) {
	w := make([]float32, 32*48)
	s, err := PackBlockSparse(w, 32, 48, 16, func(br, bc int) bool { return br != bc })
	require.NoError(t, err)
	r, c := s.FirstNonFinite()
	assert.Equal(t, [2]int{-1, -1}, [2]int{r, c})
	w[(16+3)*48+16*2+5] = float32(math.Inf(1)) // block (1, 2), row 3, column 5
	w[(0+1)*48+16+2] = float32(math.NaN())     // block (0, 1): stored before (1, 2)
	s, err = PackBlockSparse(w, 32, 48, 16, func(br, bc int) bool { return br != bc })
	require.NoError(t, err)
	r, c = s.FirstNonFinite()
	assert.Equal(t, [2]int{1, 18}, [2]int{r, c})
	w[1*48+18] = 0
	s, err = PackBlockSparse(w, 32, 48, 16, func(br, bc int) bool { return br != bc })
	require.NoError(t, err)
	r, c = s.FirstNonFinite()
	assert.Equal(t, [2]int{19, 37}, [2]int{r, c})
}
