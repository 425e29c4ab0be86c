package kernels

import (
	"sync"
	"sync/atomic"
	"testing"
)

func TestParallelRunsEveryShareOnce(t *testing.T) {
	for _, workers := range []int{-1, 0, 1, 2, 3, 8, 33} {
		for round := range 3 {
			calls := make([]atomic.Int32, max(workers, 1))
			Parallel(workers, func(w int) { calls[w].Add(1) })
			for w := range calls {
				if got := calls[w].Load(); got != 1 {
					t.Fatalf("workers %d, round %d: share %d ran %d times", workers, round, w, got)
				}
			}
		}
	}
}

// TestParallelConcurrentCallers hands shares from many goroutines at once,
// as the simulated accelerator's units do.
func TestParallelConcurrentCallers(t *testing.T) {
	var wg sync.WaitGroup
	var total atomic.Int64
	for c := range 8 {
		wg.Go(func() {
			for range 200 {
				Parallel(2+c%3, func(w int) { total.Add(int64(w + 1)) })
			}
		})
	}
	wg.Wait()
	want := int64(0)
	for c := range 8 {
		n := 2 + c%3
		want += int64(200 * n * (n + 1) / 2)
	}
	if got := total.Load(); got != want {
		t.Fatalf("shares summed to %d, want %d", got, want)
	}
}

// spin is about 60 µs of dependent arithmetic on the machine we measure
// on: half of a small product.
func spin(n int) int {
	x := 1
	for i := range n {
		x = x*31 + i ^ (x >> 7)
	}
	return x
}

var spinSink atomic.Int64

// BenchmarkParallelHandoff splits two 60 µs shares two ways: both on the
// calling goroutine (serial) and through Parallel. Parallel's ns/op against
// serial's half is what a handoff to another core costs.
func BenchmarkParallelHandoff(b *testing.B) {
	const n = 60000
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			spinSink.Add(int64(spin(n) + spin(n)))
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		for b.Loop() {
			Parallel(2, func(int) { spinSink.Add(int64(spin(n))) })
		}
	})
}
