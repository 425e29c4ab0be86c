package runtime

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Trace event kinds an actor's or FIFO's track records during a run.
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

// levels returns a counter track's samples.
func (t *track) levels() []Level {
	out := make([]Level, len(t.events))
	for i, e := range t.events {
		out[i] = Level{Time: e.ts, Elements: e.value}
	}
	return out
}

// writeTrace writes the runtime's own trace of a finished run: a thread per
// actor with its busy and stall slices, a counter per FIFO. If any track
// lost events, the trace ends at the earliest lost event, so that what it
// shows is complete; it returns that time (0 for a whole trace).
func (g *Graph) writeTrace(w io.Writer, opt Options, actorTracks, fifoTracks []*track) (int64, error) {
	tf := NewTraceFile()
	for _, t := range append(actorTracks[:len(actorTracks):len(actorTracks)], fifoTracks...) {
		if t.lost {
			tf.CutAt(t.lostAt, fmt.Sprintf("a track reached its share of the event cap %d", opt.MaxTraceEvents))
		}
	}
	tf.Note(fmt.Sprintf("time: 1 cycle is shown as 1 us (the clock is %g MHz)", opt.ClockMHz))
	tf.Process(1, "actors", 0)
	tf.Process(2, "fifo occupancy", 1)
	for i, a := range g.actors {
		tf.Thread(1, i+1, a.name, i)
	}
	for i, t := range actorTracks {
		for _, e := range t.events {
			cat := "busy"
			if e.kind == stallSlice {
				cat = "stall"
			}
			tf.Slice(1, i+1, cat, e.name, e.ts, e.value)
		}
	}
	for i, t := range fifoTracks {
		for _, e := range t.events {
			tf.Counter(2, g.fifos[i].name, "elements", e.ts, e.value)
		}
	}
	return tf.Write(w, opt.MaxTraceEvents)
}

// TraceFile builds a Chrome/Perfetto trace-event JSON file (open it in
// ui.perfetto.dev) from a finished run: processes and threads with names
// and sort order, complete slices, counters and flow arrows between slices.
// Nothing is formatted until Write, so a caller may build one from records
// it keeps anyway. The same calls give the same bytes.
//
// Time is in cycles, written as the trace format's microseconds: 1 cycle
// is shown as 1 us. Whole numbers keep slices that touch from overlapping
// after the viewer's conversion to nanoseconds, which fractions of a
// microsecond (cycles at a real clock) would not.
type TraceFile struct {
	meta   []metaEvent
	events []fileEvent
	flows  int   // flow ids handed out
	cutAt  int64 // in cycles; never unless CutAt was called
	cutWhy string
}

// MaxTraceTid and MaxTracePid bound a TraceFile's tracks: the tids
// written must fit the viewer's 32 bits.
const (
	MaxTraceTid = tidSpan - 1
	MaxTracePid = 40_000
)

// tidSpan spaces the processes' tids apart in the file: written tids are
// unique, and larger than any pid, so none is taken for a process's main
// thread (whose tid is its pid).
const tidSpan = 100_000

// TraceArg is a named integer attached to a slice, shown when it is selected.
type TraceArg struct {
	Name  string
	Value int64
}

// TraceSpot names a slice by its track and extent, for Flow.
type TraceSpot struct {
	Pid, Tid   int
	Start, Dur int64
}

type metaEvent struct {
	pid, tid int // tid 0: a process's
	name     string
	sort     int
}

type fileEvent struct {
	ph       byte  // 'X' slice, 'C' counter, 's' and 'f' flow ends, 'i' instant
	ts2      int64 // in half cycles: flow ends sit mid-slice
	seq      int   // order of the call, for ties
	pid, tid int
	cat      string
	name     string
	dur      int64 // slice
	value    int64 // counter level, flow id
	end2     int64 // a flow's finish, in half cycles
	args     []TraceArg
}

// NewTraceFile returns an empty trace.
func NewTraceFile() *TraceFile { return &TraceFile{cutAt: never} }

// Process names process pid (a group of tracks) and places it sortIndex-th.
func (t *TraceFile) Process(pid int, name string, sortIndex int) {
	t.meta = append(t.meta, metaEvent{pid: pid, name: name, sort: sortIndex})
}

// Thread names track tid of process pid and places it sortIndex-th in its
// process. Tids count within their process, from 1 up to MaxTraceTid; the
// file writes pid*tidSpan+tid, since Perfetto looks a thread's name up by
// its tid alone and would give a name to the wrong thread if two processes
// had the same tid.
func (t *TraceFile) Thread(pid, tid int, name string, sortIndex int) {
	t.meta = append(t.meta, metaEvent{pid: pid, tid: tid, name: name, sort: sortIndex})
}

func (t *TraceFile) add(e fileEvent) {
	e.seq = len(t.events)
	t.events = append(t.events, e)
}

// Slice adds a slice of dur cycles from start on track (pid, tid). Slices
// of no duration are left out: they show nothing and no flow can bind to
// them. The caller keeps the slices of a track from overlapping.
func (t *TraceFile) Slice(pid, tid int, cat, name string, start, dur int64, args ...TraceArg) {
	if dur <= 0 {
		return
	}
	t.add(fileEvent{ph: 'X', ts2: 2 * start, pid: pid, tid: tid, cat: cat, name: name, dur: dur, args: args})
}

// Counter sets counter name of process pid to value from time ts on; series
// names the value.
func (t *TraceFile) Counter(pid int, name, series string, ts, value int64) {
	t.add(fileEvent{ph: 'C', ts2: 2 * ts, pid: pid, cat: series, name: name, value: value})
}

// Flow adds an arrow from slice from to slice to, which must be slices of
// this trace. Both ends sit in the middle of their slice, where the viewer
// binds them to it. An arrow whose finish would not come after its start is
// left out: the viewer could meet the finish first.
func (t *TraceFile) Flow(cat, name string, from, to TraceSpot) {
	a, b := 2*from.Start+from.Dur, 2*to.Start+to.Dur
	if from.Dur <= 0 || to.Dur <= 0 || b <= a {
		return
	}
	t.flows++
	t.add(fileEvent{ph: 's', ts2: a, pid: from.Pid, tid: from.Tid, cat: cat, name: name, value: int64(t.flows), end2: b})
	t.add(fileEvent{ph: 'f', ts2: b, pid: to.Pid, tid: to.Tid, cat: cat, name: name, value: int64(t.flows), end2: b})
}

// Note adds a mark at time 0 across the whole trace, saying something a
// reader needs first (the time unit).
func (t *TraceFile) Note(text string) {
	t.add(fileEvent{ph: 'i', name: text})
}

// CutAt ends the trace at cycle at, for the reason why, if it ends no
// earlier: what a caller knows to be incomplete after that time (records
// that hit their own cap) is not shown as if it were whole.
func (t *TraceFile) CutAt(at int64, why string) {
	if at < t.cutAt {
		t.cutAt, t.cutWhy = at, why
	}
}

// Write writes the trace, events in time order. If there are more than
// maxEvents events (metadata and notes aside; 0: no cap), or CutAt was
// called, the trace ends at a cycle before which everything is shown: no
// event at or after it, slices cut short there, arrows only with both ends,
// and a mark at the cut saying why. It returns that cycle, or 0 for a
// whole trace.
func (t *TraceFile) Write(w io.Writer, maxEvents int) (int64, error) {
	for _, m := range t.meta {
		if err := checkTrack(m.pid, m.tid, true); err != nil {
			return 0, err
		}
	}
	for _, e := range t.events {
		if err := checkTrack(e.pid, e.tid, e.ph != 'X' && e.ph != 's' && e.ph != 'f'); err != nil {
			return 0, err
		}
	}
	// Sorted in place (a trace may hold a million events): seq keeps the
	// order of the calls at equal times, so sorting again changes nothing.
	ev := t.events
	slices.SortFunc(ev, func(a, b fileEvent) int { return cmp.Or(cmp.Compare(a.ts2, b.ts2), cmp.Compare(a.seq, b.seq)) })
	cut, why := t.cutAt, t.cutWhy
	if maxEvents > 0 {
		n := 0
		for _, e := range ev {
			if e.ph == 'i' {
				continue
			}
			if n == maxEvents {
				if c := e.ts2 / 2; c < cut {
					cut, why = c, fmt.Sprintf("event cap %d reached", maxEvents)
				}
				break
			}
			n++
		}
	}
	cut2 := int64(never) // the cut in half cycles
	if cut != never {
		cut2 = 2 * cut
	}
	tw := &traceWriter{w: bufio.NewWriter(w), quoted: map[string]string{}}
	tw.raw(`{"traceEvents":[`)
	for _, m := range t.meta {
		if m.tid == 0 {
			// A process's own events go on its main thread, tid = pid.
			tw.event(`{"ph":"M","pid":%d,"tid":%d,"name":"process_name","args":{"name":%s}}`, m.pid, m.pid, tw.quote(m.name))
			tw.event(`{"ph":"M","pid":%d,"tid":%d,"name":"process_sort_index","args":{"sort_index":%d}}`, m.pid, m.pid, m.sort)
		} else {
			tid := fileTid(m.pid, m.tid)
			tw.event(`{"ph":"M","pid":%d,"tid":%d,"name":"thread_name","args":{"name":%s}}`, m.pid, tid, tw.quote(m.name))
			tw.event(`{"ph":"M","pid":%d,"tid":%d,"name":"thread_sort_index","args":{"sort_index":%d}}`, m.pid, tid, m.sort)
		}
	}
	for _, e := range ev {
		if e.ts2 >= cut2 || (e.ph == 's' || e.ph == 'f') && e.end2 >= cut2 {
			continue
		}
		switch e.ph {
		case 'X':
			dur := min(e.dur, cut-e.ts2/2)
			tw.event(`{"ph":"X","pid":%d,"tid":%d,"cat":%s,"name":%s,"ts":%s,"dur":%d%s}`,
				e.pid, fileTid(e.pid, e.tid), tw.quote(e.cat), tw.quote(e.name), half(e.ts2), dur, tw.args(e.args))
		case 'C':
			tw.event(`{"ph":"C","pid":%d,"tid":%d,"name":%s,"ts":%s,"args":{%s:%d}}`,
				e.pid, e.pid, tw.quote(e.name), half(e.ts2), tw.quote(e.cat), e.value)
		case 's':
			tw.event(`{"ph":"s","pid":%d,"tid":%d,"cat":%s,"name":%s,"id":%d,"ts":%s}`,
				e.pid, fileTid(e.pid, e.tid), tw.quote(e.cat), tw.quote(e.name), e.value, half(e.ts2))
		case 'f':
			tw.event(`{"ph":"f","bp":"e","pid":%d,"tid":%d,"cat":%s,"name":%s,"id":%d,"ts":%s}`,
				e.pid, fileTid(e.pid, e.tid), tw.quote(e.cat), tw.quote(e.name), e.value, half(e.ts2))
		case 'i':
			tw.event(`{"ph":"i","s":"g","pid":0,"tid":0,"name":%s,"ts":%s}`, tw.quote(e.name), half(e.ts2))
		}
	}
	if cut != never {
		tw.event(`{"ph":"i","s":"g","pid":0,"tid":0,"name":%s,"ts":%d}`,
			tw.quote("trace truncated here: "+why+"; everything before this is shown"), cut)
	} else {
		cut = 0
	}
	tw.raw("\n]}\n")
	if tw.err != nil {
		return 0, tw.err
	}
	return cut, tw.w.Flush()
}

// checkTrack reports a pid or tid out of range; tid 0 (a process's own
// track) only where process is true. The note's pid 0 is the whole trace's.
func checkTrack(pid, tid int, process bool) error {
	if pid < 0 || pid > MaxTracePid || tid < 0 || tid > MaxTraceTid || tid == 0 && !process || pid == 0 && tid != 0 {
		return fmt.Errorf("trace: track (pid %d, tid %d) is out of range (pid 1..%d, tid 1..%d)", pid, tid, MaxTracePid, MaxTraceTid)
	}
	return nil
}

// fileTid is the tid a track is written with: unique in the file.
func fileTid(pid, tid int) int { return pid*tidSpan + tid }

// half writes a time in half cycles as microseconds (cycles).
func half(ts2 int64) string {
	s := strconv.FormatInt(ts2/2, 10)
	if ts2%2 != 0 {
		s += ".5"
	}
	return s
}

// traceWriter formats the trace-event JSON, keeping the first write error.
type traceWriter struct {
	w      *bufio.Writer
	n      int
	quoted map[string]string // names recur: quote each once
	err    error
}

func (tw *traceWriter) raw(s string) {
	if tw.err == nil {
		_, tw.err = tw.w.WriteString(s)
	}
}

func (tw *traceWriter) event(format string, args ...any) {
	if tw.err != nil {
		return
	}
	if tw.n > 0 {
		tw.w.WriteString(",")
	}
	tw.w.WriteString("\n")
	tw.n++
	_, tw.err = fmt.Fprintf(tw.w, format, args...)
}

func (tw *traceWriter) quote(s string) string {
	if q, ok := tw.quoted[s]; ok {
		return q
	}
	// Without HTML escaping: FIFO names hold "->", which reads better as is.
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // a string always encodes
	q := strings.TrimSuffix(b.String(), "\n")
	tw.quoted[s] = q
	return q
}

func (tw *traceWriter) args(args []TraceArg) string {
	if len(args) == 0 {
		return ""
	}
	s := `,"args":{`
	for i, a := range args {
		if i > 0 {
			s += ","
		}
		s += tw.quote(a.Name) + ":" + strconv.FormatInt(a.Value, 10)
	}
	return s + "}"
}
