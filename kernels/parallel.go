package kernels

import "sync"

// Parallel runs f(0), ..., f(workers-1) at once, f(0) on the calling
// goroutine, which would otherwise only wait, and returns once every call
// has returned.
//
// Keeping the goroutines awake between calls was tried: on this project's
// 2-core virtual machine a handoff to a sleeping core costs about 75 µs
// (BenchmarkParallelHandoff), and spinning 100 µs after each call halved
// it, but the simulated accelerator, whose units call products from
// goroutines of their own, ran about 15-20% slower (interleaved test
// binaries, 20:56), its units kept from the cores by the spinning.
func Parallel(workers int, f func(w int)) {
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Go(func() { f(w) })
	}
	f(0)
	wg.Wait()
}
