//go:build linux || darwin || dragonfly || freebsd || netbsd || openbsd

package safefiletest

import "syscall"

func mkfifo(path string) error { return syscall.Mkfifo(path, 0o644) }
