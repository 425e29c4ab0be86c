package kernels

import "sync"

// Parallel runs f(0), ..., f(workers-1) at once and returns once every call
// has returned.
//
// Every share runs on a goroutine of its own, f(0) started last, and the
// caller only waits. A go statement puts the new goroutine in its P's
// runnext slot, which another core steals only after sleeping 3 µs
// (runtime.runqgrab's usleep(3)); on this project's 2-core virtual machine
// such a sleep lasts 80-120 µs. Started last, f(0) takes that slot and
// runs on the caller's core once the caller waits, while the earlier shares
// sit in the run queue, which an idle core takes at once: a handoff then
// costs about 30 µs instead of about 75 (BenchmarkParallelHandoff), when
// the caller ran f(0) itself after starting the others.
//
// A share's panic ends the program, as in any goroutine: callers check
// their operands before they split the work.
//
// Keeping the goroutines awake between calls was also tried: it cut the
// handoff further, but the simulated accelerator, whose units call products
// from goroutines of their own, ran about 15-20% slower, its units kept from
// the cores by the spinning.
func Parallel(workers int, f func(w int)) {
	if workers <= 1 {
		f(0)
		return
	}
	var wg sync.WaitGroup
	for w := workers - 1; w >= 0; w-- {
		wg.Go(func() { f(w) })
	}
	wg.Wait()
}
