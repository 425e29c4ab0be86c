//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package safefiletest

func mkfifo(path string) error { return errNoFIFO }
