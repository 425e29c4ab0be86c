//go:build !unix

package kernels

import "time"

// processCPU is unknown here: benchmarks then report wall-clock rates only.
func processCPU() time.Duration { return 0 }
