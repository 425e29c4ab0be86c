package main

import (
	"context"
	"fmt"
	"io"
	"math"

	"vitflow/internal/safefile"
	"vitflow/topology"
)

// maxSizingImages bounds the batch -size-fifos sizes for: the sizer keeps
// recorded runs of every image (about 17 MB per DeiT-S image), and a
// chunk's worth shows the pipeline's steady state.
const maxSizingImages = chunkImages

// checkSizing validates -size-fifos and its flags.
func (o *options) checkSizing() error {
	if !o.sizeFIFOs {
		for _, name := range []string{"size-tolerance", "size-out"} {
			if o.set[name] {
				return usagef("-%s goes with -size-fifos", name)
			}
		}
		return nil
	}
	for _, name := range []string{"reference", "json", "logits", "trace", "svg", "html", "print-topology"} {
		if o.set[name] {
			return usagef("-size-fifos prints a sizing table, not a run's report: it cannot go with -%s (-size-out FILE writes the sized topology)", name)
		}
	}
	if !(o.sizeTol >= 0 && o.sizeTol <= 10) || math.IsNaN(o.sizeTol) {
		return usagef("-size-tolerance %v: must be a fraction in [0, 10] (0.01 is 1%%)", o.sizeTol)
	}
	if n := o.imageCount(); n > maxSizingImages {
		return usagef("-size-fifos sizes for at most %d images, not %d: use -images %d or fewer", maxSizingImages, n, maxSizingImages)
	}
	return nil
}

// sizeFIFOs is -size-fifos: it finds the smallest depth of every sizable
// FIFO that keeps the run's images within -size-tolerance of unbounded
// FIFOs, prints the table, and writes the sized topology to out (-size-out,
// or nil). It sizes on a timing-only accelerator, which has the full run's
// cycles exactly (see -timing-only) and simulates faster.
func sizeFIFOs(opt *options, desc topology.Description, m *model, in *inputs, out *safefile.File, stdout io.Writer) error {
	acc, err := topology.NewTimingAccelerator(m.cfg, m.pruning, m.pruning.Block, desc)
	if err != nil {
		return err
	}
	// Opt.sizeTol 0 asks for no slack at all, which SizeOptions spells as a
	// tiny positive fraction since its zero means the default.
	tol := opt.sizeTol
	if tol == 0 {
		tol = math.SmallestNonzeroFloat64
	}
	z, err := topology.SizeFIFOs(context.Background(), acc, make([][]float32, in.count), topology.SizeOptions{Tolerance: tol})
	if err != nil {
		return err
	}
	if out != nil {
		z.Description.Name = desc.Name + "-sized"
		if err := writeOut("-size-out", out, z.Description.WriteTOML); err != nil {
			return err
		}
	}
	z.Tolerance = opt.sizeTol // as asked, not the tiny fraction that spells 0
	if err := z.WriteText(stdout); err != nil {
		return err
	}
	if out != nil {
		fmt.Fprintf(stdout, "wrote the sized topology to %s (run it with -topology %s)\n", opt.sizeOut, opt.sizeOut)
	}
	return nil
}
