package vit

import (
	"testing"

	"go.uber.org/goleak"
)

// The forward pass splits products, heads and rows over goroutines; none may outlive it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
