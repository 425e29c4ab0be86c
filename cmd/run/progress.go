package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progressDelay is how long a run goes before it shows a progress bar: a
// bar that flashes by on a short run is noise.
const progressDelay = time.Second

// isTerminal reports whether w is a terminal, where a progress bar can
// redraw itself; a file or a pipe would keep every frame.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress is a run's progress bar on stderr: images done, simulated cycles
// so far and the time left, shown once the run has taken progressDelay and
// only on a terminal. The simulator reports at the end of each chunk of
// chunkImages images, the reference at each image. A nil *progress shows
// nothing.
type progress struct {
	mu     sync.Mutex
	w      io.Writer
	images int
	done   int
	cycles int64
	unit   string                   // what is counted: "images", "points"
	bar    *progressbar.ProgressBar // nil until shown
	timer  *time.Timer
	over   bool
}

// newProgress starts the clock of a run of n things called unit ("images",
// "points"); nil when w is not a terminal.
func newProgress(w io.Writer, terminal bool, n int, unit string, delay time.Duration) *progress {
	if !terminal {
		return nil
	}
	// unit is set before the timer starts: show reads it without the lock.
	p := &progress{w: w, images: n, unit: unit}
	p.timer = time.AfterFunc(delay, p.show)
	return p
}

// show draws the bar for the first time, from the timer's goroutine.
func (p *progress) show() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.over || p.bar != nil {
		return
	}
	p.bar = progressbar.NewOptions(p.images,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(p.description()),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetItsString(p.unit))
	_ = p.bar.Set(p.done) // a failed write to stderr has nowhere better to go
}

func (p *progress) description() string {
	if p.cycles == 0 {
		return p.unit
	}
	return fmt.Sprintf("%s, %s simulated cycles", p.unit, groupCycles(p.cycles))
}

// update records done images and the simulated cycles so far; after
// finish it does nothing.
func (p *progress) update(done int, cycles int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.over {
		return
	}
	p.done, p.cycles = done, cycles
	if p.bar != nil {
		// Unthrottled: updates come once a chunk of images, a few a second.
		p.bar.Describe(p.description())
		_ = p.bar.Set(done)
	}
}

// finish removes the bar, if it was shown, before the report is printed.
func (p *progress) finish() {
	if p == nil {
		return
	}
	p.timer.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.over = true
	if p.bar != nil {
		_ = p.bar.Clear()
		fmt.Fprint(p.w, "\r")
	}
}

// groupCycles formats n with thousands separators.
func groupCycles(n int64) string {
	s := fmt.Sprint(n)
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
