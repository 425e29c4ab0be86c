package kernels

import (
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// spinFor is how long a goroutine of Parallel stays awake after its share,
// waiting for the next one, and how long Parallel's caller waits awake for
// the others before it sleeps. On the 2-core virtual machine we measure on,
// handing work to a sleeping core and being woken back cost about 75 µs a
// call (BenchmarkParallelHandoff), as long as half of a 198x384x384 product.
const spinFor = 100 * time.Microsecond

// Parallel runs f(0), ..., f(workers-1) at once, f(0) on the calling
// goroutine, and returns once every call has returned. The other calls run
// on goroutines that, when done, stay awake for the next Parallel for a
// while before they exit, so that a run of products does not wake a
// sleeping core for each one.
func Parallel(workers int, f func(w int)) {
	if workers <= 1 {
		f(0)
		return
	}
	g := &group{ch: make(chan struct{}, 1)}
	g.left.Store(int32(workers - 1))
	shares := make([]share, workers-1)
	for i := range shares {
		shares[i] = share{f: f, w: i + 1, g: g}
		hand(&shares[i])
	}
	f(0)
	g.wait()
}

// group counts the calls of one Parallel still running.
type group struct {
	left     atomic.Int32
	sleeping atomic.Bool
	ch       chan struct{} // the last call's token for a sleeping caller
}

func (g *group) done() {
	if g.left.Add(-1) == 0 && g.sleeping.Load() {
		g.ch <- struct{}{}
	}
}

func (g *group) wait() {
	if spinning() {
		awhile(func() bool { return g.left.Load() == 0 })
	}
	// Sleeping set before left is read again, and left decremented before
	// sleeping is read: one side or both see the other.
	g.sleeping.Store(true)
	if g.left.Load() > 0 {
		<-g.ch
	}
}

// share is one call f(w) of a Parallel.
type share struct {
	f func(w int)
	w int
	g *group
}

// worker is a goroutine of Parallel; next is where a caller hands it a
// share while it waits awake.
type worker struct {
	next atomic.Pointer[share]
}

// awake lists the workers waiting for a share, the last to finish last.
var awake struct {
	sync.Mutex
	workers []*worker
}

// hand gives s to the worker that finished last, if one is awake, or to a
// new goroutine.
func hand(s *share) {
	awake.Lock()
	if n := len(awake.workers); n > 0 {
		w := awake.workers[n-1]
		awake.workers = awake.workers[:n-1]
		awake.Unlock()
		w.next.Store(s)
		return
	}
	awake.Unlock()
	go (&worker{}).run(s)
}

func (w *worker) run(s *share) {
	for s != nil {
		s.f(s.w)
		s.g.done()
		s = w.await()
	}
}

// await waits awake for spinFor for a share and returns it, or nil once w
// has withdrawn from awake without one.
func (w *worker) await() *share {
	if !spinning() {
		return nil
	}
	awake.Lock()
	awake.workers = append(awake.workers, w)
	awake.Unlock()
	var s *share
	if awhile(func() bool { s = w.next.Swap(nil); return s != nil }) {
		return s
	}
	awake.Lock()
	j := slices.Index(awake.workers, w)
	if j >= 0 {
		awake.workers = slices.Delete(awake.workers, j, j+1)
	}
	awake.Unlock()
	if j >= 0 {
		return nil
	}
	// A caller took w off the list: its share is on the way.
	for {
		if s := w.next.Swap(nil); s != nil {
			return s
		}
		runtime.Gosched()
	}
}

// awhile re-checks done for up to spinFor, reading the clock every 64
// checks, and reports whether done became true.
func awhile(done func() bool) bool {
	deadline := time.Now().Add(spinFor)
	for i := 0; !done(); i++ {
		if i%64 == 63 && time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// spinning reports whether waiting awake can help: with one P, the
// goroutine waited for cannot run meanwhile.
func spinning() bool { return runtime.GOMAXPROCS(0) > 1 }
