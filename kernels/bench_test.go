package kernels

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
)

// benchShapes are the DeiT-S linear layers: tokens × in → out.
var benchShapes = [][3]int{{197, 384, 1536}, {197, 1536, 384}, {198, 384, 384}}

func reportGFLOPs(b *testing.B, flops float64) {
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkGemm(b *testing.B) {
	for _, s := range benchShapes {
		m, k, n := s[0], s[1], s[2]
		rng := rand.New(rand.NewPCG(1, 2))
		a, w, c := randSlice(rng, m*k), randSlice(rng, k*n), make([]float32, m*n)
		flops := 2 * float64(m*n*k)
		for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
			b.Run(fmt.Sprintf("%dx%dx%d/threads=%d", m, k, n, workers), func(b *testing.B) {
				for b.Loop() {
					GemmParallel(workers, false, false, m, n, k, 1, a, k, w, n, 0, c, n)
				}
				reportGFLOPs(b, flops)
			})
		}
		if s == benchShapes[0] {
			b.Run(fmt.Sprintf("%dx%dx%d/portable", m, k, n), func(b *testing.B) {
				for b.Loop() {
					gemm(nil, false, false, m, n, k, 1, a, k, w, n, 0, c, n)
				}
				reportGFLOPs(b, flops)
			})
		}
	}
}

// BenchmarkBlockSparse multiplies 197 tokens by a 384×1536 weight with 16×16
// blocks kept at each density; GFLOP/s counts the dense-equivalent work, so
// it compares directly with BenchmarkGemm on the same shape.
func BenchmarkBlockSparse(b *testing.B) {
	const m, k, n, bs = 197, 384, 1536, 16
	rng := rand.New(rand.NewPCG(3, 4))
	a, w, c := randSlice(rng, m*k), randSlice(rng, k*n), make([]float32, m*n)
	flops := 2 * float64(m*n*k)
	b.Run("dense", func(b *testing.B) {
		for b.Loop() {
			Gemm(false, false, m, n, k, 1, a, k, w, n, 0, c, n)
		}
		reportGFLOPs(b, flops)
	})
	for _, density := range []float64{1, 0.5, 0.25} {
		s := packRandom(b, rng, w, k, n, bs, density)
		b.Run(fmt.Sprintf("b=%d/density=%g", bs, density), func(b *testing.B) {
			for b.Loop() {
				s.MatMul(c, a, m)
			}
			reportGFLOPs(b, flops)
		})
	}
}

// BenchmarkElementwise times the row kernels on DeiT-S sizes: the attention
// softmax over 198×198 scores, LayerNorm over 198×384 and GELU over 198×1536.
func BenchmarkElementwise(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	scores := randSlice(rng, 198*198)
	b.Run("softmax/198x198", func(b *testing.B) {
		for b.Loop() {
			SoftmaxRows(scores, 198, 198)
		}
	})
	x, gamma, beta := randSlice(rng, 198*384), randSlice(rng, 384), randSlice(rng, 384)
	b.Run("layernorm/198x384", func(b *testing.B) {
		for b.Loop() {
			LayerNorm(x, x, gamma, beta, 198, 384, 1e-6)
		}
	})
	h := randSlice(rng, 198*1536)
	b.Run("gelu/198x1536", func(b *testing.B) {
		for b.Loop() {
			GELU(h, h)
		}
	})
}
