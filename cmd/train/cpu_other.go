//go:build !unix

package main

import "time"

// cpuTime is unknown here; reports show 0.
func cpuTime() time.Duration { return 0 }
