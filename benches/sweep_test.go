package benches

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"vitflow/models"
	"vitflow/sweep"
	"vitflow/topology"
	"vitflow/vit"
)

// sweepAxes is the 100-point grid of the sweep benchmarks: 4 machine sizes
// (CHMs) x 5 densities x 5 keep rates.
func sweepAxes(b *testing.B, chms string) []sweep.Axis {
	var axes []sweep.Axis
	for _, s := range []string{"mpca.h=" + chms, "density=0.2:1:0.2", "keep=0.5:0.9:0.1"} {
		a, err := sweep.ParseAxis(s)
		if err != nil {
			b.Fatal(err)
		}
		axes = append(axes, a)
	}
	return axes
}

// runSweep runs spec into a fresh folder each iteration (nothing to
// resume), one point at a time and one per core, and reports the seconds
// per sweep and the points a second.
func runSweep(b *testing.B, spec *sweep.Spec) {
	points, err := sweep.Plan(spec)
	if err != nil {
		b.Fatal(err)
	}
	for _, jobs := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("jobs=%d", jobs), func(b *testing.B) { runPoints(b, spec, points, jobs) })
	}
}

func runPoints(b *testing.B, spec *sweep.Spec, points []sweep.Point, jobs int) {
	for b.Loop() {
		sw, err := sweep.Run(context.Background(), spec, points, sweep.Options{Dir: b.TempDir(), Jobs: jobs})
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range sw.Rows {
			if r.Error != "" {
				b.Fatal(r.Error)
			}
		}
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(sec, "s/sweep")
	b.ReportMetric(float64(len(points))/sec, "points/s")
}

// BenchmarkSweepDeiTSmall is a 100-point timing-only sweep of DeiT-S
// (seeded random weights, magnitude pruning at b=16, token dropping in
// layers 2, 6 and 9, one image a point) on u250, on every core.
func BenchmarkSweepDeiTSmall(b *testing.B) {
	cfg, err := vit.Preset("deit-small")
	if err != nil {
		b.Fatal(err)
	}
	desc, err := topology.Preset("u250")
	if err != nil {
		b.Fatal(err)
	}
	img := make([]float32, cfg.InChans*cfg.ImageSize*cfg.ImageSize)
	for i := range img {
		img[i] = float32(i%97)/48 - 1
	}
	runSweep(b, &sweep.Spec{
		Weights: vit.RandomWeights(cfg, 1), WeightsID: "random seed 1", Base: desc,
		Pruning: sweep.PruningSettings{Block: 16, Density: 0.5, Keep: 0.7, TDLayers: []int{2, 6, 9}},
		Axes:    sweepAxes(b, "2,4,8,16"), Images: 1, InputsID: "one image",
		Image:      func(int) ([]float32, error) { return img, nil },
		TimingOnly: true,
	})
}

// BenchmarkSweepMNIST is the same grid on mnist-tiny's dense embedded
// weights with numerics, each point classifying the first 500 MNIST test
// images for its accuracy.
func BenchmarkSweepMNIST(b *testing.B) {
	w, _, _, err := models.Load("dense")
	if err != nil {
		b.Fatal(err)
	}
	test, err := vit.LoadMNISTTest()
	if err != nil {
		b.Fatal(err)
	}
	desc, err := topology.Preset("u250")
	if err != nil {
		b.Fatal(err)
	}
	const n = 500
	labels := make([]int, n)
	for i := range labels {
		_, l := test.Get(i)
		labels[i] = int(l)
	}
	runSweep(b, &sweep.Spec{
		Weights: w, WeightsID: "embedded dense", Base: desc,
		Pruning: sweep.PruningSettings{Block: 16, Density: 0.5, Keep: 0.5, TDLayers: []int{0, 1, 2}},
		Axes:    sweepAxes(b, "1,2,4,8"), Images: n, InputsID: "MNIST test images 0-499", Labels: labels,
		Image: func(i int) ([]float32, error) {
			img, _ := test.Get(i)
			return vit.MNISTPixels(img, w.Config), nil
		},
	})
}
