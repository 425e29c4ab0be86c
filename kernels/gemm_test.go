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
	cases = append(cases, gemmCase{false, true, 198, 198, 64, 0.125, 0, 0, 0}, gemmCase{false, false, 0, 5, 3, 1, 0, 0, 0}, gemmCase{false, false, 4, 5, 0, 1, 0.5, 0, 0})
	return cases
}

// runGemmCase returns C from kern (nil: portable) for a seeded instance of tc.
func runGemmCase(tc gemmCase, run func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)) (got, want, scale []float64) {
	rng := rand.New(rand.NewPCG(uint64(tc.m*1000003+tc.n*1009+tc.k), 7))
	ar, ac := tc.m, tc.k
	if tc.transA {
		ar, ac = tc.k, tc.m
	}
	br, bcn := tc.k, tc.n
	if tc.transB {
		br, bcn = tc.n, tc.k
	}
	lda, ldb, ldc := ac+tc.padA, bcn+tc.padB, tc.n+1
	a := randSlice(rng, max(ar*lda, 1))
	b := randSlice(rng, max(br*ldb, 1))
	c := randSlice(rng, max(tc.m*ldc, 1))
	if tc.beta == 0 && len(c) > 0 {
		c[0] = float32(math.NaN()) // beta == 0 must ignore C entirely
	}
	want, scale = gemmRef(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, fixNaN(c, tc.beta), ldc)
	run(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
	got = make([]float64, tc.m*tc.n)
	for i := range tc.m {
		for j := range tc.n {
			got[i*tc.n+j] = float64(c[i*ldc+j])
		}
	}
	return got, want, scale
}

func fixNaN(c []float32, beta float32) []float32 {
	if beta != 0 {
		return c
	}
	return make([]float32, len(c))
}

func withKernel(kern *microKernel) func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	return func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		gemm(kern, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	}
}

// kernelsUnderTest are the GEMM paths this machine can run: portable always.
func kernelsUnderTest() map[string]*microKernel {
	ks := map[string]*microKernel{"portable": nil}
	if fastGemm != nil {
		ks[fmt.Sprintf("simd%dx%d", fastGemm.mr, fastGemm.nr)] = fastGemm
	}
	if hasAVX512 {
		ks["avx2-6x16"] = &microKernel{mr: 6, nr: 16, run: gemmKernel6x16}
	}
	return ks
}

func TestGemmAgainstFloat64(t *testing.T) {
	for name, kern := range kernelsUnderTest() {
		for _, tc := range gemmCases() {
			t.Run(name+"/"+tc.String(), func(t *testing.T) {
				got, want, scale := runGemmCase(tc, withKernel(kern))
				for i := range want {
					tol := float32Tol(tc.k, scale[i])
					if math.Abs(got[i]-want[i]) > tol {
						require.InDeltaf(t, want[i], got[i], tol, "element %d (row %d col %d)", i, i/max(tc.n, 1), i%max(tc.n, 1))
					}
				}
			})
		}
	}
}
