package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// syncBuffer is a buffer the progress bar's timer may write from its goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestProgress(t *testing.T) {
	tests := []struct {
		name     string
		terminal bool
		delay    time.Duration
		want     []string // regexps of the output; none: no output at all
	}{
		{"not a terminal", false, 0, nil},
		{"a short run", true, time.Hour, nil},
		// Images done, simulated cycles so far, and [time taken:time left].
		{"a long run on a terminal", true, 0, []string{`images, 1,234,567 simulated cycles`, `\(32/48`, `66%`,
			`66%[^\r]*\[(\d+[hms])+:(\d+[hms])+\]`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w syncBuffer
			p := newProgress(&w, tt.terminal, 48, "images", tt.delay)
			if tt.terminal && tt.delay == 0 {
				require.Eventually(t, func() bool { return w.String() != "" }, 5*time.Second, time.Millisecond, "the bar shows")
			}
			p.update(16, 600000)
			p.update(32, 1234567)
			p.finish()
			out := w.String()
			p.update(48, 2000000)
			assert.Equal(t, out, w.String(), "nothing drawn after finish")
			if tt.want == nil {
				assert.Empty(t, out)
				return
			}
			for _, s := range tt.want {
				assert.Regexp(t, s, out)
			}
			assert.NotContains(t, out, "(48/48)")
			assert.True(t, strings.HasSuffix(out, "\r"), "the bar is cleared: %q", out[max(0, len(out)-40):])
		})
	}
}

// TestNoProgressWhenStderrIsAFile runs a simulation long enough for the
// bar with stderr on a file: nothing but the run's notes goes there.
func TestNoProgressWhenStderrIsAFile(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	require.NoError(t, err)
	defer f.Close()
	assert.False(t, isTerminal(f))
	var stdout bytes.Buffer
	require.Equal(t, 0, run([]string{"-reference", "-images", "200"}, &stdout, f))
	b, err := os.ReadFile(f.Name())
	require.NoError(t, err)
	assert.Empty(t, string(b))
}
