package vit

import (
	"testing"

	"go.uber.org/goleak"
)

// The forward pass splits large products over goroutines (kernels.GemmParallel); none may outlive it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
