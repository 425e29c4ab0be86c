package sweep

import (
	"cmp"
	"context"
	"runtime"
	"slices"
	"strings"
	"sync"

	"vitflow/prune"
	"vitflow/report"
	"vitflow/runtime/host"
	"vitflow/topology"
	"vitflow/vit"
)

// Options say where and how a sweep runs.
type Options struct {
	// Dir receives the rows: CSVFile and JSONFile.
	Dir string
	// Jobs is the most points simulated at once (0 means GOMAXPROCS).
	Jobs int
	// Done, if set, hears of each point finished, those found in Dir first:
	// the points done so far, of total. Calls do not overlap.
	Done func(done, total int, row report.SweepRow)
}

// Run runs the points of s that Dir has no row for, writes each row as it
// finishes, and returns the whole sweep, rows in point order. Rows already
// in Dir with the same hashes are kept and not run again; once every point
// has a row, the files are rewritten in point order. If ctx ends, the rows
// finished so far stay in Dir and Run returns the cause.
func Run(ctx context.Context, s *Spec, points []Point, opt Options) (*report.Sweep, error) {
	files, err := openFiles(opt.Dir, s, points)
	if err != nil {
		return nil, err
	}
	defer files.close()
	jobs := opt.Jobs
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	h, err := host.New(host.Options{MaxConcurrent: jobs})
	if err != nil {
		return nil, err
	}
	defer h.Close()

	masks := &maskCache{w: s.Weights, made: map[maskKey]func() (*vit.Pruning, error){}}
	// run ends with ctx, or at the first row that cannot be written: the
	// points still to come would only be lost.
	run, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		done int
		// sem bounds the goroutines, not only the runs the host allows.
		sem = make(chan struct{}, jobs)
	)
	// The points to run are listed before any runs: the runs add to files.rows.
	var todo []Point
	for _, p := range points {
		r, ok := files.rows[p.Hash]
		if !ok {
			todo = append(todo, p)
			continue
		}
		done++
		if opt.Done != nil {
			opt.Done(done, len(points), r)
		}
	}
start:
	for _, p := range todo {
		if run.Err() != nil {
			break // select picks at random when both are ready
		}
		select {
		case sem <- struct{}{}:
		case <-run.Done():
			break start
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			// A point that fails answers with its row, the error in it; the
			// host's own errors (a panic, a closed host) come as errors.
			v, err := h.Run(run, p.Name(), func(ctx context.Context) (any, error) {
				row, err := s.runPoint(ctx, p, masks)
				if err != nil {
					row = p.failed(err.Error())
				}
				return row, nil
			})
			if run.Err() != nil {
				return // interrupted: no row, the point runs again next time
			}
			row, _ := v.(report.SweepRow)
			if err != nil {
				// A panic's message holds its stack: the row keeps the first line.
				msg, _, _ := strings.Cut(err.Error(), "\n")
				row = p.failed(msg)
			}
			mu.Lock()
			defer mu.Unlock()
			if run.Err() != nil {
				return
			}
			if err := files.add(row); err != nil {
				cancel(err)
				return
			}
			done++
			if opt.Done != nil {
				opt.Done(done, len(points), row)
			}
		}()
	}
	wg.Wait()
	if err := ctxErr(ctx); err != nil {
		return nil, err
	}
	if err := context.Cause(run); err != nil {
		return nil, err // a row could not be written
	}
	if err := files.rewrite(); err != nil {
		return nil, err
	}
	sw := &report.Sweep{
		Model: s.Weights.Config.Name, Weights: s.WeightsID, Topology: s.Base.Name,
		Inputs: s.InputsID, Images: s.Images, TimingOnly: s.TimingOnly,
	}
	for _, a := range s.Axes {
		sw.Axes = append(sw.Axes, a.Key)
	}
	for _, p := range points {
		sw.Rows = append(sw.Rows, files.rows[p.Hash])
	}
	return sw, nil
}

// runPoint simulates one point and measures its row.
func (s *Spec) runPoint(ctx context.Context, p Point, masks *maskCache) (report.SweepRow, error) {
	row := report.SweepRow{Index: p.Index, Hash: p.Hash, Settings: p.Settings}
	m, err := masks.get(p.Pruning.Block, p.Pruning.Density)
	if err != nil {
		return row, err
	}
	pr := p.Pruning.pruning(m)
	cfg := s.Weights.Config
	acc, err := topology.NewAcceleratorFor(s.Weights, pr, pr.Block, p.Desc, s.TimingOnly)
	if err != nil {
		return row, err
	}
	var latency int64
	correct, next := 0, 0
	image := s.Image
	if s.TimingOnly {
		image = nil // a timing-only run reads no pixel
	}
	res, err := acc.RunChunks(ctx, topology.Chunks{
		Images: s.Images,
		Image:  image,
		// Only the totals are kept: the cycles of each image and its answer.
		Thin: func(res *topology.SimResult, first bool) {
			for i := range res.Images {
				img := &res.Images[i]
				latency += img.Cycles
				if s.Labels != nil && img.Top1 == s.Labels[next] {
					correct++
				}
				next++
				img.Layers, img.Logits = nil, nil
			}
		},
	})
	if err != nil {
		return row, err
	}
	clock := p.Desc.ClockMHz
	row.CyclesPerImage = res.CyclesPerImage
	row.LatencyUS = float64(latency) / float64(len(res.Images)) / clock
	row.ImagesPerSecond = clock * 1e6 / res.CyclesPerImage
	row.PEUtilization = res.PEUtilisation
	row.Cause = largestCause(res.Path)
	if s.Labels != nil && !s.TimingOnly {
		acc := float64(correct) / float64(len(res.Images))
		row.Accuracy = &acc
	}
	macs, err := vit.CountMACs(cfg, pr)
	if err != nil {
		return row, err
	}
	row.MACs = macs.Linear
	if row.Params, err = vit.CountParams(cfg, pr); err != nil {
		return row, err
	}
	row.Resources = topology.EstimateResources(p.Desc, res.Links, row.Params)
	return row, nil
}

// largestCause is the cause with the most cycles on the critical path.
func largestCause(a topology.Attribution) string {
	if len(a.Causes) == 0 {
		return ""
	}
	c := slices.MaxFunc(a.Causes, func(x, y topology.CauseCycles) int { return cmp.Compare(x.Cycles, y.Cycles) })
	return string(c.Cause)
}

// maskKey identifies the magnitude pruning of one block size and density.
type maskKey struct {
	block   int
	density float64
}

// maskCache computes each block size and density's masks once, however
// many points share them.
type maskCache struct {
	w    *vit.Weights
	mu   sync.Mutex
	made map[maskKey]func() (*vit.Pruning, error)
}

func (c *maskCache) get(block int, density float64) (*vit.Pruning, error) {
	if density == 1 {
		return nil, nil
	}
	k := maskKey{block, density}
	c.mu.Lock()
	f, ok := c.made[k]
	if !ok {
		f = sync.OnceValues(func() (*vit.Pruning, error) { return prune.Magnitude(c.w, block, density) })
		c.made[k] = f
	}
	c.mu.Unlock()
	return f()
}

// failed is the row of a point that failed with msg: no measurements, the
// error on one line of the CSV and of the summary.
func (p Point) failed(msg string) report.SweepRow {
	return report.SweepRow{Index: p.Index, Hash: p.Hash, Settings: p.Settings, Error: strings.Join(strings.Fields(msg), " ")}
}
