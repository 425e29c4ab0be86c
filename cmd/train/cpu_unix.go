//go:build unix

package main

import (
	"syscall"
	"time"
)

// cpuTime is the processor time (user + system) this process has used, which
// on a shared machine says more about the training's cost than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
