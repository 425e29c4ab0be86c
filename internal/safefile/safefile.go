// Package safefile writes output files without destroying what the path
// names, and checks that an input path names a regular file.
//
// An output whose path is absent or a regular file is written atomically: a
// temporary file in the same directory is written, synced, given mode 0644
// and renamed over the path, so the path holds either the old content or
// the new, never a partial file. Anything else at the path (a symlink, a
// named pipe, a device such as /dev/null) is written through: the existing
// path is opened for writing, following symlinks, and is never replaced or
// removed. A directory is an error.
//
// Every command of the module writes its files through this package.
package safefile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Mode is the permission of a file written atomically.
const Mode fs.FileMode = 0o644

// File is an output being written. Write to it, then Commit; Abort (safe to
// defer) discards an uncommitted atomic write. Writes are buffered.
type File struct {
	w      *bufio.Writer
	f      *os.File
	path   string
	atomic bool // f is a temporary file renamed to path on Commit
	done   bool
}

// Create starts writing path. A regular file or nothing at path is replaced
// atomically on Commit; anything else is opened for writing now (a named
// pipe blocks until it has a reader) and truncated if it is a regular file
// behind a symlink.
func Create(path string) (*File, error) {
	st, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) || err == nil && st.Mode().IsRegular():
		tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
		if err != nil {
			// Name the path asked for, not the temporary file.
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, &fs.PathError{Op: "create", Path: path, Err: err}
		}
		return &File{w: bufio.NewWriterSize(tmp, 1<<16), f: tmp, path: path, atomic: true}, nil
	case err != nil:
		return nil, err
	case st.IsDir():
		return nil, &fs.PathError{Op: "write", Path: path, Err: errors.New("is a directory")}
	}
	// Not O_CREATE: a dangling symlink is an error, not a new file somewhere else.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return nil, err
	}
	return &File{w: bufio.NewWriterSize(f, 1<<16), f: f, path: path}, nil
}

// Write buffers p for the file.
func (f *File) Write(p []byte) (int, error) { return f.w.Write(p) }

// Commit flushes and syncs what was written and, for an atomic write, renames
// it into place. After Commit, Abort does nothing.
func (f *File) Commit() error {
	if f.done {
		return errors.New("safefile: commit after commit or abort")
	}
	f.done = true
	err := f.w.Flush()
	if err == nil && f.syncable() {
		err = f.f.Sync()
	}
	if err == nil && f.atomic {
		// CreateTemp makes the file private; an output is an ordinary file.
		err = f.f.Chmod(Mode)
	}
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	if err == nil && f.atomic {
		err = os.Rename(f.f.Name(), f.path)
	}
	if err != nil {
		if f.atomic {
			os.Remove(f.f.Name())
		}
		return err
	}
	if f.atomic {
		syncDir(filepath.Dir(f.path))
	}
	return nil
}

// Abort gives up an uncommitted file: an atomic write leaves the path as it
// was; a write-through has already written what it flushed.
func (f *File) Abort() {
	if f == nil || f.done { // nil: no file was started
		return
	}
	f.done = true
	f.f.Close()
	if f.atomic {
		os.Remove(f.f.Name())
	}
}

// syncable reports whether f is a regular file: Sync fails on pipes and
// devices, which have nothing to sync.
func (f *File) syncable() bool {
	if f.atomic {
		return true
	}
	st, err := f.f.Stat()
	return err == nil && st.Mode().IsRegular()
}

// syncDir makes a rename in dir durable, as far as the system allows.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// Write writes path with the content write produces, following the rules of
// Create. If write fails, an atomic write leaves the path as it was.
func Write(path string, write func(w io.Writer) error) error {
	f, err := Create(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := write(f); err != nil {
		return err
	}
	return f.Commit()
}

// CheckRegular returns an error unless path, after following symlinks, is a
// regular file: reading a named pipe or a device would block or never end.
// Call it before opening an input. The error names path and says what it is
// instead ("open p: not a regular file but a named pipe").
func CheckRegular(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("not a regular file but %s", describe(st.Mode()))}
	}
	return nil
}

// describe names the kind of a file that is not regular.
func describe(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "an irregular file"
}
