//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package safefile

import "testing"

func mkfifo(t *testing.T, path string) { t.Skip("no named pipes on this system") }
