// Package safefiletest helps test what a command does with paths that are
// not regular files: it makes named pipes, reads them in the background and
// fails a test that blocks instead of hanging it.
//
// Tests never point at a real device such as /dev/null: as root, a
// regression that renames over the path would delete the device.
package safefiletest

import (
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

var errNoFIFO = errors.New("no named pipes on this system")

// Timeout is how long Within and Receive wait.
const Timeout = 10 * time.Second

// Mkfifo makes a named pipe at path, or skips the test where there are none.
func Mkfifo(t testing.TB, path string) {
	t.Helper()
	switch err := mkfifo(path); {
	case errors.Is(err, errNoFIFO):
		t.Skip(err)
	case err != nil:
		t.Fatalf("mkfifo %s: %v", path, err)
	}
}

// ReadFIFO reads everything written to the named pipe at path, in the
// background, until the writer closes it.
func ReadFIFO(path string) <-chan []byte {
	got := make(chan []byte, 1)
	go func() {
		f, err := os.Open(path) // blocks until a writer opens it
		if err != nil {
			got <- []byte("open: " + err.Error())
			return
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		got <- b
	}()
	return got
}

// Receive returns what ReadFIFO read, failing the test after Timeout.
func Receive(t testing.TB, got <-chan []byte) []byte {
	t.Helper()
	select {
	case b := <-got:
		return b
	case <-time.After(Timeout):
		t.Fatal("the pipe's reader got nothing")
		return nil
	}
}

// Within runs f and returns its result, failing the test if f does not
// return within Timeout (a named pipe opened for reading blocks forever).
func Within[T any](t testing.TB, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(Timeout):
		t.Fatal("blocked: a named pipe was opened")
		var zero T
		return zero
	}
}
