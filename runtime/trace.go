package runtime

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// Trace event kinds.
const (
	busySlice = iota
	stallSlice
	counterSample
)

type traceEvent struct {
	kind  int8
	name  string
	ts    int64
	value int64 // duration of a slice, level of a counter
}

// track is one goroutine's trace buffer: an actor's slices or a FIFO's
// occupancy counter (written by the FIFO's reader). Each track keeps at most
// limit events; the first event it loses sets lostAt.
type track struct {
	events []traceEvent
	limit  int
	lost   bool
	lostAt int64
}

func (t *track) add(e traceEvent) {
	if len(t.events) >= t.limit {
		if !t.lost {
			t.lost, t.lostAt = true, e.ts
		}
		return
	}
	t.events = append(t.events, e)
}

// slice records busy cycles, merging with the previous slice when it has the
// same label and ends where this one starts (a loop of Work(1, "x") is one
// slice).
func (t *track) slice(label string, ts, dur int64) {
	if n := len(t.events); n > 0 {
		e := &t.events[n-1]
		if e.kind == busySlice && e.ts+e.value == ts && e.name == label {
			e.value += dur
			return
		}
	}
	t.add(traceEvent{kind: busySlice, name: label, ts: ts, value: dur})
}

func (t *track) stall(name string, ts, dur int64) {
	t.add(traceEvent{kind: stallSlice, name: name, ts: ts, value: dur})
}

// counter records a level, replacing an earlier sample at the same time.
func (t *track) counter(ts, level int64) {
	if n := len(t.events); n > 0 && t.events[n-1].ts == ts {
		t.events[n-1].value = level
		return
	}
	t.add(traceEvent{kind: counterSample, ts: ts, value: level})
}

// traceWriter formats the trace-event JSON. Tracks are written in graph
// order, each in time order, so the same run gives the same bytes.
type traceWriter struct {
	w     *bufio.Writer
	mhz   float64
	first bool
	err   error
}

func (tw *traceWriter) event(format string, args ...any) {
	if tw.err != nil {
		return
	}
	if !tw.first {
		tw.w.WriteString(",\n")
	}
	tw.first = false
	_, tw.err = fmt.Fprintf(tw.w, format, args...)
}

func (tw *traceWriter) ts(cycles int64) string {
	return strconv.FormatFloat(float64(cycles)/tw.mhz, 'f', -1, 64)
}

func quote(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}

// writeTrace writes the trace of a finished run. If any track lost events,
// every track is cut at the earliest lost event so the trace is complete up
// to that time, and a note says where and why; it returns that time (0 for
// a whole trace).
func (g *Graph) writeTrace(w io.Writer, opt Options, actorTracks, fifoTracks []*track) (int64, error) {
	cut := int64(never)
	for _, t := range append(actorTracks[:len(actorTracks):len(actorTracks)], fifoTracks...) {
		if t.lost {
			cut = min(cut, t.lostAt)
		}
	}
	tw := &traceWriter{w: bufio.NewWriter(w), mhz: opt.ClockMHz, first: true}
	tw.w.WriteString(`{"displayTimeUnit":"ns","traceEvents":[` + "\n")
	tw.event(`{"ph":"M","pid":1,"name":"process_name","args":{"name":"actors"}}`)
	tw.event(`{"ph":"M","pid":2,"name":"process_name","args":{"name":"fifo occupancy"}}`)
	for i, a := range g.actors {
		tw.event(`{"ph":"M","pid":1,"tid":%d,"name":"thread_name","args":{"name":%s}}`, i+1, quote(a.name))
		tw.event(`{"ph":"M","pid":1,"tid":%d,"name":"thread_sort_index","args":{"sort_index":%d}}`, i+1, i)
	}
	for i, t := range actorTracks {
		for _, e := range t.events {
			if e.ts >= cut {
				break
			}
			cat := "busy"
			if e.kind == stallSlice {
				cat = "stall"
			}
			dur := min(e.value, cut-e.ts)
			tw.event(`{"ph":"X","pid":1,"tid":%d,"cat":"%s","name":%s,"ts":%s,"dur":%s}`,
				i+1, cat, quote(e.name), tw.ts(e.ts), tw.ts(dur))
		}
	}
	for i, t := range fifoTracks {
		name := quote(g.fifos[i].name)
		for _, e := range t.events {
			if e.ts >= cut {
				break
			}
			tw.event(`{"ph":"C","pid":2,"name":%s,"ts":%s,"args":{"occupancy":%d}}`, name, tw.ts(e.ts), e.value)
		}
	}
	if cut != never {
		tw.event(`{"ph":"i","s":"g","pid":1,"tid":0,"name":%s,"ts":%s}`,
			quote(fmt.Sprintf("trace truncated here: event cap %d reached", opt.MaxTraceEvents)), tw.ts(cut))
	}
	if tw.err != nil {
		return 0, tw.err
	}
	tw.w.WriteString("\n]}\n")
	if cut == never {
		cut = 0
	}
	return cut, tw.w.Flush()
}
