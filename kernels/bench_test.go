package kernels

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// benchShapes are the DeiT-S linear layers: tokens × in → out.
var benchShapes = [][3]int{{197, 384, 1536}, {197, 1536, 384}, {198, 384, 384}}

// benchProduct is one GEMM of the DeiT-S forward with seeded operands laid
// out as the forward lays them out.
type benchProduct struct {
	name          string
	transB        bool
	m, n, k       int
	alpha         float32
	a, b, c       []float32
	lda, ldb, ldc int
}

// benchProducts are the linear layers (m×k×n) and one head's attention
// products as the reference forward computes them: Q·K^T, scaled, with K
// transposed (198x64x198), and the probabilities times V (198x198x64),
// where Q, K and V are a head's 64 columns of the 198×1152 matrix of the
// fused QKV product and the output 64 columns of 384-wide rows.
func benchProducts() []benchProduct {
	rng := rand.New(rand.NewPCG(1, 2))
	var ps []benchProduct
	for _, s := range benchShapes {
		m, k, n := s[0], s[1], s[2]
		ps = append(ps, benchProduct{fmt.Sprintf("%dx%dx%d", m, k, n), false, m, n, k, 1,
			randSlice(rng, m*k), randSlice(rng, k*n), make([]float32, m*n), k, n, n})
	}
	const tokens, head, width = 198, 64, 384
	qkv := randSlice(rng, tokens*3*width)
	ps = append(ps,
		benchProduct{"198x64x198/q.kT", true, tokens, tokens, head, 0.125,
			qkv, qkv[width:], make([]float32, tokens*tokens), 3 * width, 3 * width, tokens},
		benchProduct{"198x198x64/p.v", false, tokens, head, tokens, 1,
			randSlice(rng, tokens*tokens), qkv[2*width:], make([]float32, tokens*width), tokens, 3 * width, width})
	return ps
}

// flops is the product's floating-point operations.
func (p benchProduct) flops() float64 { return 2 * float64(p.m*p.n*p.k) }

// run computes the product with gemm, a Gemm-shaped function.
func (p benchProduct) run(gemm gemmFunc) {
	gemm(false, p.transB, p.m, p.n, p.k, p.alpha, p.a, p.lda, p.b, p.ldb, 0, p.c, p.ldc)
}

// meter measures the rate of a benchmark loop of flops per iteration.
type meter struct {
	flops float64
	cpu0  time.Duration
}

// startMeter is called just before the b.Loop loop.
func startMeter(flops float64) meter { return meter{flops, processCPU()} }

// report gives GFLOP/s on the wall clock and GFLOP/cpu-s on the process's CPU
// time: the machine is shared, and CPU time does not count the time this
// process waited for a core, so the second is the steadier one to compare.
func (m meter) report(b *testing.B) {
	total := m.flops * float64(b.N) / 1e9
	b.ReportMetric(total/b.Elapsed().Seconds(), "GFLOP/s")
	if cpu := processCPU() - m.cpu0; m.cpu0 > 0 && cpu > 0 {
		b.ReportMetric(total/cpu.Seconds(), "GFLOP/cpu-s")
	}
}

func BenchmarkGemm(b *testing.B) {
	for i, p := range benchProducts() {
		for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
			b.Run(fmt.Sprintf("%s/threads=%d", p.name, workers), func(b *testing.B) {
				rate := startMeter(p.flops())
				for b.Loop() {
					p.run(withWorkers(workers))
				}
				rate.report(b)
			})
		}
		if i == 0 {
			b.Run(p.name+"/portable", func(b *testing.B) {
				rate := startMeter(p.flops())
				for b.Loop() {
					p.run(withKernel(nil))
				}
				rate.report(b)
			})
		}
	}
}

// sparseBenchConfigs are the block sizes and kept-block densities of the block-sparse benchmarks.
var sparseBenchConfigs = []struct {
	bs      int
	density float64
}{{16, 1}, {16, 0.5}, {16, 0.25}, {8, 0.5}, {32, 0.5}}

// BenchmarkBlockSparse multiplies 197 tokens by a 384×1536 weight with b×b
// blocks kept at each density; GFLOP/s counts the dense-equivalent work, so
// it compares directly with the dense GEMM on the same shape.
func BenchmarkBlockSparse(b *testing.B) {
	const m, k, n = 197, 384, 1536
	rng := rand.New(rand.NewPCG(3, 4))
	a, w, c := randSlice(rng, m*k), randSlice(rng, k*n), make([]float32, m*n)
	flops := 2 * float64(m*n*k)
	b.Run("dense", func(b *testing.B) {
		rate := startMeter(flops)
		for b.Loop() {
			Gemm(false, false, m, n, k, 1, a, k, w, n, 0, c, n)
		}
		rate.report(b)
	})
	for _, cfg := range sparseBenchConfigs {
		s := packRandom(b, rng, w, k, n, cfg.bs, cfg.density)
		b.Run(fmt.Sprintf("b=%d/density=%g", cfg.bs, cfg.density), func(b *testing.B) {
			rate := startMeter(flops)
			for b.Loop() {
				s.MatMul(c, a, m)
			}
			rate.report(b)
		})
	}
}

// BenchmarkElementwise times the row kernels on DeiT-S sizes: the attention
// softmax over 198×198 scores, LayerNorm over 198×384 and GELU over 198×1536,
// per element on the wall clock and in process CPU time.
func BenchmarkElementwise(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	scores := randSlice(rng, 198*198)
	x, gamma, beta := randSlice(rng, 198*384), randSlice(rng, 384), randSlice(rng, 384)
	h := randSlice(rng, 198*1536)
	for _, tc := range []struct {
		name  string
		elems int
		run   func()
	}{
		{"softmax/198x198", len(scores), func() { SoftmaxRows(scores, 198, 198) }},
		{"layernorm/198x384", len(x), func() { LayerNorm(x, x, gamma, beta, 198, 384, 1e-6) }},
		{"gelu/198x1536", len(h), func() { GELU(h, h) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cpu0 := processCPU()
			for b.Loop() {
				tc.run()
			}
			n := float64(b.N * tc.elems)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/elem")
			if cpu := processCPU() - cpu0; cpu0 > 0 && cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/elem")
			}
		})
	}
}

// pairedRates runs fast and base alternately in each iteration of b.Loop, so
// that both meet the same load on a shared machine, and reports the rate of
// each (flops per wall second) and their ratio: the figure that survives noise.
// Each side runs pairedRun calls in a row, as a forward pass makes them:
// OpenBLAS keeps its threads awake for a while after a call
// (OPENBLAS_THREAD_TIMEOUT), so that single calls taking turns would measure
// its threads in vitflow's way.
func pairedRates(b *testing.B, flops float64, fastName string, fast func(), baseName string, base func()) {
	var tFast, tBase time.Duration
	for b.Loop() {
		t0 := time.Now()
		for range pairedRun {
			fast()
		}
		t1 := time.Now()
		for range pairedRun {
			base()
		}
		tFast += t1.Sub(t0)
		tBase += time.Since(t1)
	}
	total := flops * float64(b.N*pairedRun) / 1e9
	b.ReportMetric(total/tFast.Seconds(), fastName+"-GFLOP/s")
	b.ReportMetric(total/tBase.Seconds(), baseName+"-GFLOP/s")
	b.ReportMetric(tBase.Seconds()/tFast.Seconds(), "speedup")
}

// pairedRun is how many calls in a row each side of pairedRates makes.
const pairedRun = 8

// BenchmarkBlockSparseVsDense pairs each block-sparse product with the dense
// GEMM of the same shape, iteration by iteration.
func BenchmarkBlockSparseVsDense(b *testing.B) {
	const m, k, n = 197, 384, 1536
	rng := rand.New(rand.NewPCG(3, 4))
	a, w, c := randSlice(rng, m*k), randSlice(rng, k*n), make([]float32, m*n)
	for _, cfg := range sparseBenchConfigs {
		s := packRandom(b, rng, w, k, n, cfg.bs, cfg.density)
		b.Run(fmt.Sprintf("b=%d/density=%g", cfg.bs, cfg.density), func(b *testing.B) {
			pairedRates(b, 2*float64(m*n*k),
				"sparse", func() { s.MatMul(c, a, m) },
				"dense", func() { Gemm(false, false, m, n, k, 1, a, k, w, n, 0, c, n) })
		})
	}
}

// BenchmarkPackSelected packs a DeiT-S FC1 (384×1536) at block 16 and
// density 0.5: with every column, and with half the neurons gathered.
func BenchmarkPackSelected(b *testing.B) {
	const rows, cols, blk = 384, 1536, 16
	w := make([]float32, rows*cols)
	keep := func(br, bc int) bool { return (br*7+bc*3)%2 == 0 }
	half := make([]int, cols/2)
	for j := range half {
		half[j] = 2*j + j%3%2
	}
	for _, tc := range []struct {
		name string
		sel  Selection
		cols int
	}{
		{"dense-columns", Selection{Data: w, Stride: cols}, cols},
		{"gathered-columns", Selection{Data: w, Stride: cols, Cols: half}, cols / 2},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := PackSelected(tc.sel, rows, tc.cols, blk, keep); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(rows * tc.cols * 4 / 2))
		})
	}
}

// BenchmarkFirstNonFinite scans 1 Mi finite values (the check every unit
// makes of its outputs and the build of its weights), fast and portable.
func BenchmarkFirstNonFinite(b *testing.B) {
	x := make([]float32, 1<<20)
	for i := range x {
		x[i] = float32(i)
	}
	for name, f := range map[string]func([]float32) int{"fast": FirstNonFinite, "portable": firstNonFinitePortable} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if f(x) != -1 {
					b.Fatal("found a non-finite value")
				}
			}
			b.SetBytes(int64(4 * len(x)))
		})
	}
}
