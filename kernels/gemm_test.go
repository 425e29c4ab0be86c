package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = rng.Float32()*2 - 1
	}
	return s
}

// gemmRef is Gemm in float64, also returning the magnitude Σ|alpha·a·b| + |beta·c|
// of each element, which bounds its float32 rounding error.
func gemmRef(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) (want, scale []float64) {
	want, scale = make([]float64, m*n), make([]float64, m*n)
	for i := range m {
		for j := range n {
			var sum, mag float64
			for p := range k {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				sum += float64(av) * float64(bv)
				mag += math.Abs(float64(av) * float64(bv))
			}
			want[i*n+j] = float64(alpha)*sum + float64(beta)*float64(c[i*ldc+j])
			scale[i*n+j] = math.Abs(float64(alpha))*mag + math.Abs(float64(beta)*float64(c[i*ldc+j]))
		}
	}
	return want, scale
}

// float32Tol is the allowed error of a float32 sum of k terms whose
// magnitudes add up to scale: a few ulps per term, as blocked sums differ.
func float32Tol(k int, scale float64) float64 {
	return 2 * float64(k+2) * scale / (1 << 23)
}

type gemmCase struct {
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	padA, padB     int // extra leading-dimension padding
}

func (c gemmCase) String() string {
	return fmt.Sprintf("tA=%v,tB=%v,%dx%dx%d,alpha=%g,beta=%g,pad=%d/%d", c.transA, c.transB, c.m, c.n, c.k, c.alpha, c.beta, c.padA, c.padB)
}

func gemmCases() []gemmCase {
	var cases []gemmCase
	for _, tA := range []bool{false, true} {
		for _, tB := range []bool{false, true} {
			for _, s := range [][3]int{{1, 1, 1}, {1, 33, 7}, {7, 5, 3}, {7, 17, 13}, {13, 31, 257}, {197, 65, 19}, {198, 47, 64}, {25, 33, 300}} {
				cases = append(cases, gemmCase{tA, tB, s[0], s[1], s[2], 1, 0, 0, 0})
			}
			cases = append(cases,
				gemmCase{tA, tB, 19, 40, 11, -0.5, 1, 3, 1},
				gemmCase{tA, tB, 29, 70, 23, 2, 0.25, 0, 5},
				gemmCase{tA, tB, 198, 64, 198, 0.125, 0, 0, 0}, // attention Q·K^T and A·V per head
			)
		}
	}
	// DeiT-S linear layers.
	for _, s := range [][3]int{{197, 1536, 384}, {197, 384, 1536}, {198, 384, 384}, {198, 1152, 384}} {
		cases = append(cases, gemmCase{false, false, s[0], s[1], s[2], 1, 0, 0, 0})
	}
	// Every row count that an 8- or 12-row block leaves, on whole 48-column panels.
	for m := 1; m < 14; m++ {
		cases = append(cases, gemmCase{m%2 == 0, false, m, 96, 37, 1, 0.5, 0, 0})
	}
	// More rows, columns and depth than one cache block, with a short last block and panel in each.
	const bm, bn, bk = 2*mcBlock + 7, ncBlock + 65, kcBlock + 16
	cases = append(cases, gemmCase{false, false, bm, bn, bk, 1, 0.5, 2, 0}, gemmCase{true, false, bm, bn, bk, 0.5, 0, 0, 3})
	cases = append(cases, gemmCase{false, true, 198, 198, 64, 0.125, 0, 0, 0}, gemmCase{false, false, 0, 5, 3, 1, 0, 0, 0}, gemmCase{false, false, 4, 5, 0, 1, 0.5, 0, 0})
	return cases
}

// gemmInputs is a seeded instance of tc: A, B, C and their leading dimensions.
type gemmInputs struct {
	a, b, c       []float32
	lda, ldb, ldc int
}

func newGemmInputs(tc gemmCase) gemmInputs {
	rng := rand.New(rand.NewPCG(uint64(tc.m*1000003+tc.n*1009+tc.k), 7))
	ar, ac := tc.m, tc.k
	if tc.transA {
		ar, ac = tc.k, tc.m
	}
	br, bcn := tc.k, tc.n
	if tc.transB {
		br, bcn = tc.n, tc.k
	}
	in := gemmInputs{lda: ac + tc.padA, ldb: bcn + tc.padB, ldc: tc.n + 1}
	in.a = randSlice(rng, max(ar*in.lda, 1))
	in.b = randSlice(rng, max(br*in.ldb, 1))
	in.c = randSlice(rng, max(tc.m*in.ldc, 1))
	if tc.beta == 0 {
		in.c[0] = float32(math.NaN()) // beta == 0 must ignore C entirely
	}
	return in
}

// reference is tc in float64 with per-element error scales (see gemmRef).
func (tc gemmCase) reference() (want, scale []float64) {
	in := newGemmInputs(tc)
	if tc.beta == 0 {
		in.c = make([]float32, len(in.c))
	}
	return gemmRef(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, in.a, in.lda, in.b, in.ldb, tc.beta, in.c, in.ldc)
}

// run returns the m×n result of run on a seeded instance of tc.
func (tc gemmCase) run(run gemmFunc) []float64 {
	in := newGemmInputs(tc)
	run(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, in.a, in.lda, in.b, in.ldb, tc.beta, in.c, in.ldc)
	got := make([]float64, tc.m*tc.n)
	for i := range tc.m {
		for j := range tc.n {
			got[i*tc.n+j] = float64(in.c[i*in.ldc+j])
		}
	}
	return got
}

// gemmFunc is a function shaped as Gemm.
type gemmFunc func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)

func withKernel(kern *microKernel) gemmFunc {
	return func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		gemm(kern, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	}
}

// withWorkers is GemmParallel on workers goroutines.
func withWorkers(workers int) gemmFunc {
	return func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		GemmParallel(workers, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	}
}

// kernelsUnderTest are the GEMM paths this machine can run: portable always,
// and every SIMD micro-kernel the CPU supports, not only the chosen one.
func kernelsUnderTest() map[string]*microKernel {
	ks := simdGemmKernels()
	ks["portable"] = nil
	return ks
}

// TestGemm checks every GEMM path against the float64 reference, and each
// SIMD path directly against the portable one, on odd and DeiT-S shapes with
// every transpose combination.
func TestGemm(t *testing.T) {
	for _, tc := range gemmCases() {
		t.Run(tc.String(), func(t *testing.T) {
			want, scale := tc.reference()
			portable := tc.run(withKernel(nil))
			for name, kern := range kernelsUnderTest() {
				got := portable
				if kern != nil {
					got = tc.run(withKernel(kern))
				}
				for i := range want {
					tol := float32Tol(tc.k, scale[i])
					if math.Abs(got[i]-want[i]) > tol {
						require.InDeltaf(t, want[i], got[i], tol, "%s: element %d (row %d col %d)", name, i, i/max(tc.n, 1), i%max(tc.n, 1))
					}
					if math.Abs(got[i]-portable[i]) > 2*tol {
						require.InDeltaf(t, portable[i], got[i], 2*tol, "%s against portable: element %d", name, i)
					}
				}
			}
		})
	}
}

func TestGemmParallelDeterministic(t *testing.T) {
	defer func(v int) { minWorkerFlops = v }(minWorkerFlops)
	minWorkerFlops = 1 // split even these small products
	for name, kern := range kernelsUnderTest() {
		for _, tc := range []gemmCase{
			{false, false, 197, 640, 96, 1, 0, 0, 0},  // split by columns
			{true, true, 198, 40, 70, 0.5, 0.5, 0, 0}, // too narrow: split by rows
			{false, true, 198, 198, 64, 0.125, 0, 0, 0},
			{true, false, 7, 300, 9, 1, 1, 0, 0},
			{false, false, 197, 48, 37, 1, 0, 0, 0}, // one 48-column panel: split by rows, with a short last tile
		} {
			t.Run(name+"/"+tc.String(), func(t *testing.T) {
				want, scale := tc.reference()
				var first []float64
				for _, workers := range []int{1, 2, 3, 4, 7, 0} {
					got := tc.run(func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
						gemmParallel(kern, workers, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
					})
					if first == nil {
						first = got
						for i := range want {
							require.InDelta(t, want[i], got[i], float32Tol(tc.k, scale[i]))
						}
						continue
					}
					require.Equal(t, first, got, "workers=%d differs from workers=1", workers)
				}
			})
		}
	}
}

func TestGemmPanicsOnShortSlices(t *testing.T) {
	a, b, c := make([]float32, 6), make([]float32, 6), make([]float32, 4)
	for _, tc := range []struct {
		name string
		run  func()
	}{
		{"short A", func() { Gemm(false, false, 2, 2, 3, 1, a[:5], 3, b, 2, 0, c, 2) }},
		{"short B", func() { Gemm(false, false, 2, 2, 3, 1, a, 3, b[:5], 2, 0, c, 2) }},
		{"short C", func() { Gemm(false, false, 2, 2, 3, 1, a, 3, b, 2, 0, c[:3], 2) }},
		{"small lda", func() { Gemm(false, false, 2, 2, 3, 1, a, 2, b, 2, 0, c, 2) }},
		{"transposed A too short", func() { Gemm(true, false, 2, 2, 3, 1, a[:5], 2, b, 2, 0, c, 2) }},
		{"negative", func() { Gemm(false, false, -1, 2, 3, 1, a, 3, b, 2, 0, c, 2) }},
	} {
		t.Run(tc.name, func(t *testing.T) { require.Panics(t, tc.run) })
	}
	require.NotPanics(t, func() { Gemm(false, false, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2) })
}
