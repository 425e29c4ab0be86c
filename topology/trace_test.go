package topology

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// traceEvent is one trace event as the viewer reads it.
type traceEvent struct {
	Ph   string         `json:"ph"`
	Name string         `json:"name"`
	Cat  string         `json:"cat"`
	Pid  int            `json:"pid"`
	Tid  int            `json:"tid"`
	Ts   float64        `json:"ts"`
	Dur  float64        `json:"dur"`
	ID   int            `json:"id"`
	Bp   string         `json:"bp"`
	S    string         `json:"s"`
	Args map[string]any `json:"args"`
}

// parsedTrace is a trace read back and checked.
type parsedTrace struct {
	events  []traceEvent
	threads map[[2]int]string // (pid, tid) -> name
	procs   map[int]string
	slices  map[[2]int][]traceEvent // per track, in time order
	flows   int
	cut     bool
}

// track returns the (pid, tid) of the thread called name.
func (p *parsedTrace) track(t *testing.T, name string) [2]int {
	t.Helper()
	for k, n := range p.threads {
		if n == name {
			return k
		}
	}
	t.Fatalf("no track %q", name)
	return [2]int{}
}

// checkTrace parses a trace and checks what holds of every trace: it is
// JSON of known events in time order; every track and process is named;
// slices have a positive duration and never overlap on a track; every arrow
// has one start and one finish, each in the middle of a slice of its track,
// the start no later than the finish; every stall names a FIFO of the run
// and the unit at the FIFO's other end.
func checkTrace(t *testing.T, data []byte, res *SimResult) *parsedTrace {
	t.Helper()
	var doc struct {
		TraceEvents []traceEvent `json:"traceEvents"`
	}
	require.NoError(t, json.Unmarshal(data, &doc), "the trace parses")
	p := &parsedTrace{events: doc.TraceEvents, threads: map[[2]int]string{}, procs: map[int]string{}, slices: map[[2]int][]traceEvent{}}
	var stalls []traceEvent
	counters := map[int]bool{} // processes with counters
	type flowEnds struct{ s, f []traceEvent }
	flows := map[int]*flowEnds{}
	last := -1.0
	for _, e := range p.events {
		if e.Ph == "M" {
			switch e.Name {
			case "process_name":
				p.procs[e.Pid] = e.Args["name"].(string)
			case "thread_name":
				// Perfetto names a thread by its tid alone: tids are unique.
				for k := range p.threads {
					require.NotEqual(t, e.Tid, k[1], "tid %d of process %d is also in process %d", e.Tid, e.Pid, k[0])
				}
				p.threads[[2]int{e.Pid, e.Tid}] = e.Args["name"].(string)
			case "process_sort_index", "thread_sort_index":
			default:
				t.Errorf("unknown metadata %q", e.Name)
			}
			continue
		}
		require.GreaterOrEqual(t, e.Ts, last, "events in time order: %+v", e)
		last = e.Ts
		switch e.Ph {
		case "X":
			require.Positive(t, e.Dur, "slice %q has a positive duration", e.Name)
			k := [2]int{e.Pid, e.Tid}
			p.slices[k] = append(p.slices[k], e)
			if e.Cat == "stall" {
				stalls = append(stalls, e)
			}
		case "C":
			require.Len(t, e.Args, 1, "counter %q has one series", e.Name)
			require.Equal(t, e.Pid, e.Tid, "counter %q is on its process's main thread", e.Name)
			counters[e.Pid] = true
		case "s", "f":
			if flows[e.ID] == nil {
				flows[e.ID] = &flowEnds{}
			}
			if e.Ph == "s" {
				flows[e.ID].s = append(flows[e.ID].s, e)
			} else {
				require.Equal(t, "e", e.Bp, "a finish binds to its enclosing slice")
				flows[e.ID].f = append(flows[e.ID].f, e)
			}
		case "i":
			require.Equal(t, "g", e.S)
			p.cut = p.cut || strings.HasPrefix(e.Name, "trace truncated here")
		default:
			t.Fatalf("unknown event %+v", e)
		}
	}
	for k, list := range p.slices {
		require.Contains(t, p.threads, k, "track %v is named", k)
		require.Contains(t, p.procs, k[0], "process %d is named", k[0])
		for i := 1; i < len(list); i++ {
			require.LessOrEqual(t, list[i-1].Ts+list[i-1].Dur, list[i].Ts, "slices %q and %q overlap on %s",
				list[i-1].Name, list[i].Name, p.threads[k])
		}
	}
	for pid := range counters {
		require.Contains(t, p.procs, pid, "process %d of counters is named", pid)
	}
	require.NotContains(t, string(data), "displayTimeUnit", "Perfetto flags displayTimeUnit")
	inside := func(e traceEvent) bool {
		list := p.slices[[2]int{e.Pid, e.Tid}]
		i, _ := slices.BinarySearchFunc(list, e.Ts, func(s traceEvent, ts float64) int { return cmp.Compare(s.Ts, ts) })
		// The slice that starts before the end, if it runs past it.
		return i > 0 && list[i-1].Ts < e.Ts && e.Ts < list[i-1].Ts+list[i-1].Dur
	}
	for id, f := range flows {
		require.Len(t, f.s, 1, "flow %d has one start", id)
		require.Len(t, f.f, 1, "flow %d has one finish", id)
		require.Less(t, f.s[0].Ts, f.f[0].Ts, "flow %d goes forward", id)
		require.True(t, inside(f.s[0]), "flow %d starts inside a slice: %+v", id, f.s[0])
		require.True(t, inside(f.f[0]), "flow %d finishes inside a slice: %+v", id, f.f[0])
	}
	for _, e := range stalls {
		checkStall(t, p.threads[[2]int{e.Pid, e.Tid}], e.Name, res)
	}
	p.flows = len(flows)
	return p
}

// checkStall: "starved on F waiting for W" on the track of unit U names an
// input F of U that W writes; "blocked on F by R" an output F of U that R
// reads.
func checkStall(t *testing.T, track, name string, res *SimResult) {
	t.Helper()
	ports := func(unit string, inputs bool) []string {
		a := res.Stats.Actor(strings.TrimSuffix(unit, ": dispatch front"))
		require.NotNil(t, a, "stall %q names unit %q of the run", name, unit)
		list := a.Blocked
		if inputs {
			list = a.Starved
		}
		var names []string
		for _, p := range list {
			names = append(names, p.FIFO)
		}
		return names
	}
	var fifo, other string
	switch {
	case strings.HasPrefix(name, "starved on "):
		fifo, other, _ = strings.Cut(strings.TrimPrefix(name, "starved on "), " waiting for ")
		require.Contains(t, ports(track, true), fifo, "stall %q on %s names one of its inputs", name, track)
		require.Contains(t, ports(other, false), fifo, "stall %q names the FIFO's writer", name)
	case strings.HasPrefix(name, "blocked on "):
		fifo, other, _ = strings.Cut(strings.TrimPrefix(name, "blocked on "), " by ")
		require.Contains(t, ports(track, false), fifo, "stall %q on %s names one of its outputs", name, track)
		require.Contains(t, ports(other, true), fifo, "stall %q names the FIFO's reader", name)
	default:
		t.Fatalf("stall %q says neither starved nor blocked", name)
	}
	require.True(t, slices.ContainsFunc(res.Links, func(k LinkInfo) bool { return k.Name == fifo }), "stall %q names a FIFO of the run", name)
}

// traced runs mnist-tiny's two images with a trace and returns both.
func traced(t *testing.T, d Description, opt TraceOptions) (*SimResult, []byte) {
	t.Helper()
	w, p, imgs := mnistTiny(t)
	acc, err := NewAccelerator(w, p, 0, d)
	require.NoError(t, err)
	var buf bytes.Buffer
	opt.W = &buf
	res, err := acc.RunTraced(context.Background(), imgs, opt)
	require.NoError(t, err)
	return res, buf.Bytes()
}

// TestTraceValid checks whole traces of detailed and ideal runs: valid (see
// checkTrace), every unit's busy slices add up to its busy statistic, the
// PEs' slices cover the cycles at least one PE worked, a counter per FIFO
// and per layer, arrows through every layer, and the same bytes under
// GOMAXPROCS 1 and 2.
func TestTraceValid(t *testing.T) {
	for _, tc := range []struct {
		name   string
		desc   func() Description
		arrows int // at least, per image and layer
	}{
		{"u250 balanced", func() Description { return preset(t, "u250", FidelityDetailed) }, 10},
		{"small static", func() Description {
			d := preset(t, "small", FidelityDetailed)
			d.Balance = PolicyStatic
			return d
		}, 10},
		// Free units in ideal fidelity do no work: arrows go PE to PE.
		{"paper ideal", func() Description { return preset(t, "paper", FidelityIdeal) }, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, data := traced(t, tc.desc(), TraceOptions{})
			p := checkTrace(t, data, res)
			assert.False(t, p.cut, "a whole trace has no truncation mark")
			assert.Zero(t, res.Stats.TraceCut)

			// Busy slices add up to each unit's busy cycles.
			busy := map[[2]int]float64{}
			for k, list := range p.slices {
				for _, e := range list {
					if e.Cat == "busy" {
						busy[k] += e.Dur
					}
				}
			}
			for _, a := range res.Stats.Actors {
				name := a.Name
				if name == "mpca" {
					name = "mpca: dispatch front"
				}
				assert.Equal(t, float64(a.Busy), busy[p.track(t, name)], "busy slices of %s", a.Name)
			}
			// The PEs' slices: their union is the MPCA's busy time.
			var iv [][2]float64
			for k, list := range p.slices {
				if strings.Contains(p.threads[k], " PE ") {
					for _, e := range list {
						iv = append(iv, [2]float64{e.Ts, e.Ts + e.Dur})
					}
				}
			}
			slices.SortFunc(iv, func(a, b [2]float64) int { return cmp.Compare(a[0], b[0]) })
			var union, end float64
			for _, w := range iv {
				if w[1] > end {
					union += w[1] - max(w[0], end)
					end = w[1]
				}
			}
			assert.Equal(t, float64(res.MPCABusy), union, "the PEs' slices cover the MPCA's busy cycles")
			assert.Len(t, p.threads, len(res.Stats.Actors)+res.Desc.MPCA.H*res.Desc.MPCA.T*res.Desc.MPCA.C, "a track per unit and per PE")

			counters := map[string]bool{}
			for _, e := range p.events {
				if e.Ph == "C" {
					counters[e.Name] = true
				}
			}
			for _, k := range res.Links {
				assert.True(t, counters[k.Name], "a counter for FIFO %s", k.Name)
			}
			for l := range res.Images[0].Layers {
				assert.True(t, counters[fmt.Sprintf("L%d tokens kept", l)], "a counter for layer %d's tokens", l)
			}
			assert.GreaterOrEqual(t, p.flows, tc.arrows*len(res.Images)*len(res.Images[0].Layers), "arrows")

			// Tracing changes no simulated time.
			w, pr, imgs := mnistTiny(t)
			plain, err := Simulate(context.Background(), SimInput{Weights: w, Pruning: pr, Desc: tc.desc(), Images: imgs})
			require.NoError(t, err)
			stats := *res.Stats
			stats.FIFOs = slices.Clone(stats.FIFOs)
			for i := range stats.FIFOs {
				assert.NotEmpty(t, stats.FIFOs[i].Levels, "%s's levels are kept for the trace", stats.FIFOs[i].Name)
				stats.FIFOs[i].Levels, stats.FIFOs[i].LevelsCut = nil, 0
			}
			assert.Equal(t, *plain.Stats, stats, "the same statistics with and without a trace")
			assert.Equal(t, plain.Cycles, res.Cycles)

			// The same bytes under GOMAXPROCS 1 and 2.
			for _, procs := range []int{1, 2} {
				old := goruntime.GOMAXPROCS(procs)
				_, again := traced(t, tc.desc(), TraceOptions{})
				goruntime.GOMAXPROCS(old)
				assert.True(t, bytes.Equal(data, again), "GOMAXPROCS %d: the same bytes", procs)
			}
		})
	}
}

// TestTraceNames checks what slices are called on a detailed run.
func TestTraceNames(t *testing.T) {
	res, data := traced(t, preset(t, "small", FidelityDetailed), TraceOptions{})
	p := checkTrace(t, data, res)
	names := map[string][]string{} // track -> slice names
	for k, list := range p.slices {
		for _, e := range list {
			names[p.threads[k]] = append(names[p.threads[k]], e.Name)
		}
	}
	for _, tc := range []struct{ track, name string }{
		{"layernorm1", "L0 layernorm1 rows 0-15"},
		{"softmax", "L1 softmax head 1 rows 16-31"},
		{"gelu", "L3 gelu rows 0-15"},
		{"CHM 0 PE 0", "L0 Q rows 0-15"},
		{"tokendrop", "L1 token drop: 50 -> 37 tokens (top 35 kept, the rest fused)"},
		{"patchembed", "patch embedding rows 0-15"},
		{"classifier", "image 1 classifier"},
		{"loader0", "L2 FC1 weights"},
		{"mpca: dispatch front", "L3 FC2"},
		{"mpca: dispatch front", "starved on gelu->mpca waiting for gelu"},
	} {
		assert.Contains(t, names[tc.track], tc.name, "track %s", tc.track)
	}
	procs := slices.Sorted(func(yield func(string) bool) {
		for _, n := range p.procs {
			if !yield(n) {
				return
			}
		}
	})
	assert.Contains(t, procs, "MPCA CHM 0")
	assert.Contains(t, procs, "special-function units")
	assert.Contains(t, procs, "token dropping")
	assert.Contains(t, procs, "memory (weight loaders)")
	assert.Contains(t, procs, "control")
}

// TestTraceFilter traces chosen images and layers only.
func TestTraceFilter(t *testing.T) {
	d := preset(t, "small", FidelityDetailed)
	res, data := traced(t, d, TraceOptions{Images: []int{1}, Layers: []int{2, 3}})
	p := checkTrace(t, data, res)
	n := 0
	for _, list := range p.slices {
		for _, e := range list {
			n++
			assert.EqualValues(t, 1, e.Args["image"], "%q", e.Name)
			l, ok := e.Args["layer"].(float64)
			require.True(t, ok, "%q has a layer: patch embedding and classifier are left out", e.Name)
			assert.Contains(t, []float64{2, 3}, l, "%q", e.Name)
		}
	}
	assert.Positive(t, n)
	assert.Positive(t, p.flows)
	assert.NotContains(t, string(data), "L0 tokens kept")
	assert.Contains(t, string(data), "L2 tokens kept")

	// A FIFO that changed more often than the cap before the traced span is
	// left out, with a note, rather than cutting the whole trace there.
	res, data = traced(t, d, TraceOptions{MaxEvents: 300, Images: []int{1}, Layers: []int{3}})
	p = checkTrace(t, data, res)
	assert.Contains(t, string(data), "FIFO weights->chm0's occupancy is left out: it changed more often than the event cap before the traced span")
	assert.NotContains(t, string(data), `"name":"weights->chm0"`)
	assert.Positive(t, len(p.slices), "the traced span is still shown")

	// A unit's wait for its first traced input can start at cycle 0; it
	// must not stretch the span the counters cover, or a small cap would
	// cut the trace before any work of the traced layer.
	res, data = traced(t, d, TraceOptions{MaxEvents: 150, Layers: []int{2}})
	p = checkTrace(t, data, res)
	busy := 0
	for _, list := range p.slices {
		for _, e := range list {
			if e.Cat == "busy" {
				busy++
			}
		}
	}
	assert.Positive(t, busy, "layer 2's work is in a trace of 150 events")

	w, pr, imgs := mnistTiny(t)
	acc, err := NewAccelerator(w, pr, 0, d)
	require.NoError(t, err)
	for _, tc := range []struct {
		opt  TraceOptions
		want string
	}{
		{TraceOptions{Images: []int{2}}, "trace image 2 is not in the run (images 0..1)"},
		{TraceOptions{Images: []int{-1}}, "trace image -1 is not in the run"},
		{TraceOptions{Layers: []int{4}}, "trace layer 4 is not in the model (layers 0..3)"},
		{TraceOptions{MaxEvents: -1}, "max trace events -1 is negative"},
	} {
		var buf bytes.Buffer
		tc.opt.W = &buf
		_, err := acc.RunTraced(context.Background(), imgs, tc.opt)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
		assert.Zero(t, buf.Len(), "nothing written")
	}
}

// TestTraceCap: a trace over its cap stops at a cycle, marked in the trace,
// still valid, with at most the cap of events.
func TestTraceCap(t *testing.T) {
	for _, limit := range []int{50, 2000} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			res, data := traced(t, preset(t, "small", FidelityDetailed), TraceOptions{MaxEvents: limit})
			p := checkTrace(t, data, res)
			assert.True(t, p.cut, "the cut is marked")
			cut := res.Stats.TraceCut
			require.Positive(t, cut)
			assert.Less(t, cut, res.Cycles)
			n := 0
			for _, e := range p.events {
				if e.Ph != "M" && e.Ph != "i" {
					n++
					assert.Less(t, e.Ts, float64(cut), "no event at or after the cut")
				}
				if e.Ph == "X" {
					assert.LessOrEqual(t, e.Ts+e.Dur, float64(cut), "slices end by the cut")
				}
			}
			assert.LessOrEqual(t, n, limit)
			assert.Greater(t, n, limit/2, "the cap is used")
		})
	}
}
