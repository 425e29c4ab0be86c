package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	vrt "vitflow/runtime"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// pipeline builds and runs a two-actor graph: a source of n elements, one
// per cycle, into a sink that takes 2 cycles each. With n elements the
// makespan is 2n+1 (the sink starts at cycle 1 and is never starved after).
// fail makes the sink return an error at element 3; crash makes it panic.
func pipeline(n int, fail, crash bool) RunFunc {
	return func(ctx context.Context) (any, error) {
		g := vrt.NewGraph()
		f, err := vrt.NewFIFO[int](g, "f", 2, 1)
		if err != nil {
			return nil, err
		}
		g.AddActor("source", func(c *vrt.Ctx) error {
			for i := range n {
				if err := f.Send(c, i); err != nil {
					return err
				}
				c.Work(1, "source")
			}
			return nil
		}, vrt.Writes(f))
		g.AddActor("sink", func(c *vrt.Ctx) error {
			for {
				v, err := f.Recv(c)
				if errors.Is(err, vrt.ErrClosed) {
					return nil
				}
				if err != nil {
					return err
				}
				if v == 3 && fail {
					return errors.New("bad element 3")
				}
				if v == 3 && crash {
					panic("sink crashed")
				}
				c.Work(2, "sink")
			}
		}, vrt.Reads(f))
		s, err := g.Run(ctx, vrt.Options{})
		if err != nil {
			return nil, err
		}
		return s.Makespan, nil
	}
}

func TestConcurrentRequests(t *testing.T) {
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&logs, &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := New(Options{MaxConcurrent: 4, Logger: logger})
	require.NoError(t, err)
	defer h.Close()

	const requests = 200
	type answer struct {
		value any
		err   error
	}
	answers := make([]answer, requests)
	var wg sync.WaitGroup
	for i := range requests {
		wg.Go(func() {
			n := 10 + i%7
			v, err := h.Run(context.Background(), fmt.Sprintf("req%d", i), pipeline(n, i%10 == 3, i%10 == 7))
			answers[i] = answer{v, err}
		})
	}
	wg.Wait()
	for i, a := range answers {
		n := 10 + i%7
		switch i % 10 {
		case 3:
			assert.ErrorContains(t, a.err, fmt.Sprintf(`run "req%d": actor "sink": bad element 3`, i))
		case 7:
			assert.ErrorContains(t, a.err, `actor "sink" panicked at cycle 7: sink crashed`)
		default:
			require.NoError(t, a.err, "request %d", i)
			assert.Equal(t, int64(2*n+1), a.value, "request %d", i)
		}
	}
	// Still serving after the failures.
	v, err := h.Run(context.Background(), "after", pipeline(5, false, false))
	require.NoError(t, err)
	assert.Equal(t, int64(11), v)

	logMu.Lock()
	defer logMu.Unlock()
	assert.Contains(t, logs.String(), "actor system started", "protoactor logs through our slog logger")
	assert.Contains(t, logs.String(), "run failed")
}

type lockedWriter struct {
	buf *bytes.Buffer
	mu  *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// TestBoundedConcurrency: with MaxConcurrent 3, three runs are in progress
// together (each waits for the other two) and never more.
func TestBoundedConcurrency(t *testing.T) {
	const limit = 3
	h, err := New(Options{MaxConcurrent: limit})
	require.NoError(t, err)
	defer h.Close()
	var running, peak atomic.Int32
	full := make(chan struct{})
	var once sync.Once
	job := func(ctx context.Context) (any, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		if n == limit {
			once.Do(func() { close(full) })
		}
		select {
		case <-full:
			return n, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() { _, errs[i] = h.Run(ctx, "job", job) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, int32(limit), peak.Load())
}

// TestClose: closing cancels the run in progress, answers the queued ones
// with ErrClosed, and refuses later requests.
func TestClose(t *testing.T) {
	h, err := New(Options{MaxConcurrent: 1})
	require.NoError(t, err)
	started := make(chan struct{})
	blocking := func(ctx context.Context) (any, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	errs := make(chan error, 3)
	go func() { _, err := h.Run(context.Background(), "blocking", blocking); errs <- err }()
	<-started
	for range 2 {
		go func() {
			_, err := h.Run(context.Background(), "queued", pipeline(3, false, false))
			errs <- err
		}()
	}
	// Give the queued requests time to reach the host's queue; either way
	// (queued or refused) they must fail with ErrClosed.
	time.Sleep(50 * time.Millisecond)
	h.Close()
	var closed, cancelled int
	for range 3 {
		err := <-errs
		switch {
		case errors.Is(err, ErrClosed):
			closed++
		case errors.Is(err, context.Canceled):
			cancelled++
		default:
			t.Errorf("unexpected %v", err)
		}
	}
	assert.Equal(t, 2, closed)
	assert.Equal(t, 1, cancelled)
	_, err = h.Run(context.Background(), "late", pipeline(3, false, false))
	assert.ErrorIs(t, err, ErrClosed)
	h.Close() // idempotent
}

func TestRequesterCancel(t *testing.T) {
	h, err := New(Options{})
	require.NoError(t, err)
	defer h.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = h.Run(ctx, "cancelled", pipeline(3, false, false))
	assert.ErrorIs(t, err, context.Canceled)
	_, err = h.Run(context.Background(), "nil", nil)
	assert.ErrorContains(t, err, "nil RunFunc")
	_, err = New(Options{MaxConcurrent: -1})
	assert.ErrorContains(t, err, "MaxConcurrent -1 must be positive")
}
