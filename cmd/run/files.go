package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"vitflow/internal/safefile"
	"vitflow/topology"
)

// namedPath is a file named on the command line, with its flag.
type namedPath struct{ flag, path string }

// inputFiles are the files the run reads: -weights, a -topology that is not
// a preset, and every -image.
func (o *options) inputFiles() []namedPath {
	var in []namedPath
	if o.weights != "" {
		in = append(in, namedPath{"-weights", o.weights})
	}
	if !o.compare && !slices.Contains(topology.PresetNames(), o.topology) {
		in = append(in, namedPath{"-topology", o.topology})
	}
	for _, p := range o.imageFiles {
		in = append(in, namedPath{"-image", p})
	}
	for _, p := range o.reports {
		in = append(in, namedPath{"-compare", p})
	}
	return in
}

// outputFiles are the files the run writes.
func (o *options) outputFiles() []namedPath {
	var out []namedPath
	if o.trace != "" {
		out = append(out, namedPath{"-trace", o.trace})
	}
	if o.svg != "" {
		out = append(out, namedPath{"-svg", o.svg})
	}
	if o.html != "" {
		out = append(out, namedPath{"-html", o.html})
	}
	if o.sizeOut != "" {
		out = append(out, namedPath{"-size-out", o.sizeOut})
	}
	return out
}

// checkOutputPaths refuses an output that is the same file as another
// output or as an input: one would silently overwrite the other.
func (o *options) checkOutputPaths() error {
	outs := o.outputFiles()
	for i, out := range outs {
		for _, other := range slices.Concat(outs[:i], o.inputFiles()) {
			if sameFile(out.path, other.path) {
				return usagef("%s %q is the same file as %s %q: give each output its own path", out.flag, out.path, other.flag, other.path)
			}
		}
	}
	return nil
}

// sameFile reports whether paths a and b name one file: the same existing
// file (through symlinks or hard links), or the same place in the same
// directory.
func sameFile(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(sa, sb)
	}
	return canonical(a) == canonical(b)
}

// canonical is path made absolute, with the symlinks of its directory resolved.
func canonical(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Clean(path)
	}
	dir, base := filepath.Split(abs)
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		return filepath.Join(d, base)
	}
	return abs
}

// checkFiles refuses, before anything is opened, an input that is not a
// regular file after following symlinks: a named pipe would block the run
// forever. A missing file is left to the loader, which says so.
func (o *options) checkFiles() error {
	for _, in := range o.inputFiles() {
		if err := safefile.CheckRegular(in.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: %w", in.flag, err)
		}
	}
	return nil
}

// writeOut writes the output file f of flag with write and commits it, so
// that a failed write leaves the path as it was.
func writeOut(flag string, f *safefile.File, write func(io.Writer) error) error {
	err := write(f)
	if err == nil {
		err = f.Commit()
	}
	if err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	return nil
}
