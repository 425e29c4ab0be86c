package runtime

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fileEvents writes tf with the cap and returns its events and the cut.
func fileEvents(t *testing.T, tf *TraceFile, maxEvents int) ([]map[string]any, int64) {
	t.Helper()
	var buf bytes.Buffer
	cut, err := tf.Write(&buf, maxEvents)
	require.NoError(t, err)
	var doc struct {
		TraceEvents []map[string]any `json:"traceEvents"`
	}
	require.NoError(t, json.Unmarshal(buf.Bytes(), &doc), "%s", buf.String())
	return doc.TraceEvents, cut
}

// TestTraceFileCap: a capped file ends at a cycle before which it is whole:
// slices clipped there, arrows only with both ends, and a mark.
func TestTraceFileCap(t *testing.T) {
	build := func() *TraceFile {
		tf := NewTraceFile()
		tf.Process(1, `a "quoted" <group>`, 0)
		tf.Thread(1, 1, "first", 0)
		tf.Thread(1, 2, "second", 1)
		tf.Slice(1, 1, "busy", "x", 0, 10)
		tf.Slice(1, 2, "busy", "y", 5, 1)  // an arrow's end sits at 5.5
		tf.Slice(1, 2, "busy", "z", 20, 0) // no duration: left out
		tf.Flow("f", "x to y", TraceSpot{Pid: 1, Tid: 1, Start: 0, Dur: 10}, TraceSpot{Pid: 1, Tid: 2, Start: 5, Dur: 1})
		tf.Flow("f", "y to x goes back", TraceSpot{Pid: 1, Tid: 2, Start: 5, Dur: 1}, TraceSpot{Pid: 1, Tid: 1, Start: 0, Dur: 10})
		tf.Slice(1, 1, "busy", "late", 10, 30)
		tf.Counter(1, "level", "elements", 12, 3)
		return tf
	}
	for _, tc := range []struct {
		name     string
		max      int
		cut      int64
		slices   []string
		flowEnds int
	}{
		{"whole", 0, 0, []string{"x", "y", "late"}, 2},
		{"above the count", 10, 0, []string{"x", "y", "late"}, 2},
		// Events by time: x 0, s 5, y 5, f 5.5, late 10, counter 12.
		{"cut at the counter", 5, 12, []string{"x", "y", "late"}, 2},
		{"cut at late", 4, 10, []string{"x", "y"}, 2},
		{"cut inside the arrow", 3, 5, []string{"x"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events, cut := fileEvents(t, build(), tc.max)
			assert.Equal(t, tc.cut, cut)
			var slices []string
			flowEnds, marked := 0, false
			tids := map[float64]string{}
			for _, e := range events {
				switch e["ph"] {
				case "M":
					if e["name"] == "thread_name" {
						tids[e["tid"].(float64)] = e["args"].(map[string]any)["name"].(string)
					}
				case "X":
					slices = append(slices, e["name"].(string))
					if tc.cut > 0 {
						assert.LessOrEqual(t, e["ts"].(float64)+e["dur"].(float64), float64(tc.cut), "clipped at the cut")
					}
				case "s", "f":
					flowEnds++
				case "i":
					if strings.HasPrefix(e["name"].(string), "trace truncated here") {
						marked = true
						assert.EqualValues(t, tc.cut, e["ts"])
					}
				}
			}
			assert.Equal(t, tc.slices, slices)
			assert.Equal(t, tc.flowEnds, flowEnds, "the backward arrow is left out; an arrow past the cut goes whole")
			assert.Equal(t, tc.cut > 0, marked)
			assert.Equal(t, map[float64]string{100001: "first", 100002: "second"}, tids, "tids unique in the file")
		})
	}
}

// TestTraceFileHalfCycles: arrows sit mid-slice, in half cycles.
func TestTraceFileHalfCycles(t *testing.T) {
	tf := NewTraceFile()
	tf.Slice(1, 1, "busy", "a", 3, 1)
	tf.Slice(1, 2, "busy", "b", 7, 4)
	tf.Flow("f", "a to b", TraceSpot{Pid: 1, Tid: 1, Start: 3, Dur: 1}, TraceSpot{Pid: 1, Tid: 2, Start: 7, Dur: 4})
	var buf bytes.Buffer
	_, err := tf.Write(&buf, 0)
	require.NoError(t, err)
	assert.Contains(t, buf.String(), `"ph":"s","pid":1,"tid":100001,"cat":"f","name":"a to b","id":1,"ts":3.5}`)
	assert.Contains(t, buf.String(), `"ph":"f","bp":"e","pid":1,"tid":100002,"cat":"f","name":"a to b","id":1,"ts":9}`)
}

// TestTraceFileTracks: tracks out of range are an error, nothing written.
func TestTraceFileTracks(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pid, tid int
	}{
		{"tid 0 slice", 1, 0},
		{"tid too large", 1, MaxTraceTid + 1},
		{"pid too large", MaxTracePid + 1, 1},
		{"negative pid", -1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tf := NewTraceFile()
			tf.Slice(tc.pid, tc.tid, "busy", "x", 0, 1)
			var buf bytes.Buffer
			_, err := tf.Write(&buf, 0)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "is out of range")
			assert.Zero(t, buf.Len())
		})
	}
}
