package sweep

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"vitflow/models"
	"vitflow/report"
	"vitflow/topology"
	"vitflow/vit"
)

func TestParseAxis(t *testing.T) {
	for _, tc := range []struct {
		in     string
		key    string
		values []string
		err    string
	}{
		{in: "mpca.h=2,4,8", key: "mpca.h", values: []string{"2", "4", "8"}},
		{in: " balance = static, balanced", key: "balance", values: []string{"static", "balanced"}},
		{in: "density=0.25:1:0.25", key: "density", values: []string{"0.25", "0.5", "0.75", "1"}},
		{in: "density=0.1:0.3:0.1", key: "density", values: []string{"0.1", "0.2", "0.3"}},
		{in: "fifo.output_depth=4:16:4,64", key: "fifo.output_depth", values: []string{"4", "8", "12", "16", "64"}},
		{in: "keep=0.5:0.9:0.25", key: "keep", values: []string{"0.5", "0.75"}},
		{in: "mpca.h=", err: "empty value"},
		{in: "mpca.h=2,,4", err: "empty value"},
		{in: "=2", err: "want KEY="},
		{in: "mpca.h", err: "want KEY="},
		{in: "density=1:0.5:0.1", err: "is empty"},
		{in: "density=0:1:0", err: "is empty"},
		{in: "density=0:x:0.1", err: `"x" is not a number`},
		{in: "density=0:1:1e-9", err: "more than 10000"},
		{in: "mpca.h=2,4,2", err: "listed twice"},
		{in: "mpca h=2", err: "keys are letters"},
		{in: "mpca.h=1e19:1e20:1e19", err: "within ±2^53"},
		{in: "mpca.h=2\n4", err: "control character"},
	} {
		a, err := ParseAxis(tc.in)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, Axis{Key: tc.key, Values: tc.values}, a, tc.in)
	}
}

// mnistSpec is a small sweep of mnist-tiny's dense weights on the first n
// MNIST test images.
func mnistSpec(t testing.TB, n int, axes ...string) *Spec {
	t.Helper()
	w, _, _, err := models.Load("dense")
	require.NoError(t, err)
	test, err := vit.LoadMNISTTest()
	require.NoError(t, err)
	desc, err := topology.Preset("u250")
	require.NoError(t, err)
	s := &Spec{
		Weights: w, WeightsID: "embedded dense", Base: desc,
		Pruning: PruningSettings{Block: 16, Density: 0.5, Keep: 0.5, TDLayers: []int{0, 1, 2}},
		Images:  n, InputsID: "MNIST test images",
		Image: func(i int) ([]float32, error) {
			img, _ := test.Get(i)
			return vit.MNISTPixels(img, w.Config), nil
		},
	}
	for i := range n {
		_, label := test.Get(i)
		s.Labels = append(s.Labels, int(label))
	}
	for _, a := range axes {
		ax, err := ParseAxis(a)
		require.NoError(t, err)
		s.Axes = append(s.Axes, ax)
	}
	return s
}

func TestPlan(t *testing.T) {
	s := mnistSpec(t, 1, "mpca.h=2,4", "density=0.5,1", "balance=static,balanced")
	points, err := Plan(s)
	require.NoError(t, err)
	require.Len(t, points, 8)
	// The last axis varies fastest.
	assert.Equal(t, "mpca.h=2 density=0.5 balance=static", points[0].Name())
	assert.Equal(t, "mpca.h=2 density=0.5 balance=balanced", points[1].Name())
	assert.Equal(t, "mpca.h=4 density=1 balance=balanced", points[7].Name())
	assert.Equal(t, 4, points[7].Desc.MPCA.H)
	assert.Equal(t, topology.PolicyBalanced, points[7].Desc.Balance)
	assert.Equal(t, 1.0, points[7].Pruning.Density)
	assert.Equal(t, 4, s.Base.MPCA.H, "the base is not changed")
	hashes := map[string]bool{}
	for _, p := range points {
		hashes[p.Hash] = true
	}
	assert.Len(t, hashes, 8, "every point has its own hash")
	again, err := Plan(s)
	require.NoError(t, err)
	assert.Equal(t, points, again, "planning is deterministic")
	// Another model or mode changes every hash.
	s.TimingOnly = true
	other, err := Plan(s)
	require.NoError(t, err)
	assert.NotEqual(t, points[0].Hash, other[0].Hash)

	// The description's name only labels it.
	s.TimingOnly = false
	s.Base.Name = "my-card"
	renamed, err := Plan(s)
	require.NoError(t, err)
	assert.Equal(t, points[0].Hash, renamed[0].Hash)

	s = mnistSpec(t, 1, "fifo.depths.mpca->gelu=1,2")
	points, err = Plan(s)
	require.NoError(t, err)
	assert.Equal(t, 2, points[1].Desc.FIFO.Depths["mpca->gelu"])
	assert.Nil(t, s.Base.FIFO.Depths, "the base's depths map is not shared")
}

func TestPlanErrors(t *testing.T) {
	for _, tc := range []struct {
		axes []string
		err  string
	}{
		{[]string{"mpca.q=1,2"}, `unknown key "mpca.q"`},
		{[]string{"name=a,b"}, `unknown key "name"`},
		{[]string{"mpca.h=two"}, `mpca.h=two: mpca.h: "two" is not an integer`},
		{[]string{"memory.weights_on_chip=maybe"}, "is not true or false"},
		{[]string{"density=high"}, `"high" is not a number`},
		{[]string{"block=7"}, "block=7"},
		{[]string{"mpca.h=0"}, "mpca.h must be >= 1"},
		{[]string{"balance=fair"}, `balance must be one of`},
		{[]string{"fifo.depths.mpca->nowhere=2"}, `unknown link "mpca->nowhere"`},
		{[]string{"td=0/9"}, `"9" is not a layer of mnist-tiny`},
		{[]string{"mpca.h=1,2", "mpca.h=3"}, "swept twice"},
		{[]string{"mpca.t=1:40:1", "mpca.c=1:40:1"}, "more than 1000 points"},
		{[]string{"mpca.h=2,02"}, "points mpca.h=2 and mpca.h=02 are the same configuration"},
		{[]string{"density=0.5,0.50"}, "are the same configuration"},
	} {
		_, err := Plan(mnistSpec(t, 1, tc.axes...))
		require.Error(t, err, tc.axes)
		assert.Contains(t, err.Error(), tc.err, tc.axes)
		assert.NotContains(t, err.Error(), "\n")
	}
	s := mnistSpec(t, 2)
	s.Labels = s.Labels[:1]
	_, err := Plan(s)
	assert.EqualError(t, err, "sweep: 1 labels for 2 images")
	s.Image = nil
	s.Labels = nil
	_, err = Plan(s)
	assert.EqualError(t, err, "sweep: no images to load (Spec.Image)")

	s = mnistSpec(t, 1, "mpca.t=1:40:1", "mpca.c=1:40:1")
	s.Force = true
	points, err := Plan(s)
	require.NoError(t, err)
	assert.Len(t, points, 1600)
}

// run runs s into dir and returns the sweep and the CSV.
func run(t *testing.T, ctx context.Context, s *Spec, dir string, opt Options) (*report.Sweep, []byte, error) {
	t.Helper()
	points, err := Plan(s)
	require.NoError(t, err)
	opt.Dir = dir
	sw, err := Run(ctx, s, points, opt)
	table, _ := os.ReadFile(filepath.Join(dir, CSVFile))
	return sw, table, err
}

func TestRunResumes(t *testing.T) {
	axes := []string{"mpca.h=2,4", "density=0.5,1", "fifo.activation_depth=1,32"}
	whole, table, err := run(t, context.Background(), mnistSpec(t, 4, axes...), t.TempDir(), Options{Jobs: 2})
	require.NoError(t, err)
	require.Len(t, whole.Rows, 8)
	for i, r := range whole.Rows {
		assert.Equal(t, i, r.Index)
		assert.Empty(t, r.Error)
		assert.Positive(t, r.CyclesPerImage)
		require.NotNil(t, r.Accuracy)
		assert.Positive(t, r.Resources.DSPs)
	}
	assert.Equal(t, 9, bytes.Count(table, []byte("\n")), "a header and 8 rows")

	// Interrupted after three rows, then run again.
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	rows := 0
	_, _, err = run(t, ctx, mnistSpec(t, 4, axes...), dir, Options{Jobs: 1, Done: func(done, total int, _ report.SweepRow) {
		mu.Lock()
		defer mu.Unlock()
		if rows++; rows == 3 {
			cancel()
		}
	}})
	require.ErrorIs(t, err, context.Canceled)
	kept, err := os.ReadFile(filepath.Join(dir, JSONFile))
	require.NoError(t, err)
	assert.Equal(t, 3, bytes.Count(kept, []byte("\n")), "the finished rows are kept")
	// A row cut short by a kill is dropped and run again.
	f, err := os.OpenFile(filepath.Join(dir, JSONFile), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"index":5,"hash":"`)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	ran := 0
	resumed, again, err := run(t, context.Background(), mnistSpec(t, 4, axes...), dir, Options{Jobs: 2, Done: func(done, total int, _ report.SweepRow) {
		mu.Lock()
		defer mu.Unlock()
		ran++
	}})
	require.NoError(t, err)
	assert.Equal(t, 8, ran, "Done hears of every point, reused or run")
	assert.Equal(t, string(table), string(again), "the resumed CSV equals the uninterrupted one")
	assert.Equal(t, whole, resumed)
	js, err := os.ReadFile(filepath.Join(dir, JSONFile))
	require.NoError(t, err)
	assert.Equal(t, 8, bytes.Count(js, []byte("\n")), "no duplicate rows")
}

func TestRunFailingPoints(t *testing.T) {
	s := mnistSpec(t, 2, "mpca.h=2,4")
	load := s.Image
	s.Image = func(i int) ([]float32, error) {
		if i == 1 {
			return nil, errors.New("image 1 is unreadable")
		}
		return load(i)
	}
	dir := t.TempDir()
	sw, table, err := run(t, context.Background(), s, dir, Options{})
	require.NoError(t, err, "failing points do not fail the sweep")
	require.Len(t, sw.Rows, 2)
	for _, r := range sw.Rows {
		assert.Equal(t, "image 1 is unreadable", r.Error)
		assert.Zero(t, r.CyclesPerImage)
	}
	assert.Equal(t, 2, strings.Count(string(table), "image 1 is unreadable"))
	assert.NotContains(t, string(table), `run \"`, "the row names its point; the host's prefix is dropped")

	// A failed point runs again when the sweep is resumed: its error may have passed.
	s.Image = load
	sw, _, err = run(t, context.Background(), s, dir, Options{})
	require.NoError(t, err)
	for _, r := range sw.Rows {
		assert.Empty(t, r.Error)
		assert.Positive(t, r.CyclesPerImage)
	}
}

func TestRunSameOnAnyJobs(t *testing.T) {
	axes := []string{"mpca.t=6,12", "keep=0.5,1", "balance=static,balanced"}
	_, one, err := run(t, context.Background(), mnistSpec(t, 2, axes...), t.TempDir(), Options{Jobs: 1})
	require.NoError(t, err)
	_, two, err := run(t, context.Background(), mnistSpec(t, 2, axes...), t.TempDir(), Options{Jobs: 3})
	require.NoError(t, err)
	assert.Equal(t, string(one), string(two))
}

func TestRunRefusesForeignFiles(t *testing.T) {
	dir := t.TempDir()
	_, _, err := run(t, context.Background(), mnistSpec(t, 1, "mpca.h=2,4"), dir, Options{})
	require.NoError(t, err)
	// The same columns, other points.
	_, _, err = run(t, context.Background(), mnistSpec(t, 1, "mpca.h=1,3"), dir, Options{})
	assert.ErrorContains(t, err, "holds rows of another sweep")
	// Other columns.
	_, _, err = run(t, context.Background(), mnistSpec(t, 1, "mpca.t=2,4"), dir, Options{})
	assert.ErrorContains(t, err, "another sweep's table")

	// A named pipe in place of a file fails at once rather than blocking.
	piped := t.TempDir()
	require.NoError(t, syscall.Mkfifo(filepath.Join(piped, JSONFile), 0o644))
	_, _, err = run(t, context.Background(), mnistSpec(t, 1, "mpca.h=2,4"), piped, Options{})
	assert.ErrorContains(t, err, "not a regular file but a named pipe")

	// A folder that cannot be made fails before any point runs.
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	ran := false
	_, _, err = run(t, context.Background(), mnistSpec(t, 1, "mpca.h=2,4"), filepath.Join(file, "out"), Options{Done: func(int, int, report.SweepRow) { ran = true }})
	require.Error(t, err)
	assert.False(t, ran)
	assert.True(t, strings.HasPrefix(err.Error(), "sweep: output folder"), err.Error())
}

// A timing-only sweep measures what the full one does, but for accuracy.
func TestRunTimingOnlyEqualsFull(t *testing.T) {
	axes := []string{"mpca.h=2,4", "density=0.5,1", "keep=0.5,1", "balance=static,balanced", "fifo.activation_depth=1,32"}
	full, _, err := run(t, context.Background(), mnistSpec(t, 2, axes...), t.TempDir(), Options{})
	require.NoError(t, err)
	s := mnistSpec(t, 2, axes...)
	s.TimingOnly = true
	timing, _, err := run(t, context.Background(), s, t.TempDir(), Options{})
	require.NoError(t, err)
	assert.True(t, timing.TimingOnly)
	require.Len(t, timing.Rows, 32)
	for i := range full.Rows {
		f, tm := full.Rows[i], timing.Rows[i]
		require.Empty(t, f.Error)
		assert.NotNil(t, f.Accuracy)
		assert.Nil(t, tm.Accuracy, "no predictions, no accuracy")
		assert.NotEqual(t, f.Hash, tm.Hash, "the mode is part of a point")
		f.Accuracy, f.Hash, tm.Hash = nil, "", ""
		assert.Equal(t, f, tm, f.Name())
	}
}
