package main

import (
	"strings"

	"vitflow/models"
)

// usage is the -h text: every flag with an example.
func usage() string {
	return strings.NewReplacer("{variants}", strings.Join(models.Variants(), ", "), "{default}", models.Default).Replace(usageText)
}

const usageText = `Usage: go run ./cmd/run [flags]

Runs pruned ViT inference on the simulated accelerator and prints the
predictions, the simulated latency beside the analytical estimator, the
run's critical path by cause with the bottleneck named, the gap to the
estimator by cause, each layer's share of the path by op and unit, the PE
load against each op's fluid bound, the units on the path and the fullest
FIFOs. With no flags: the embedded mnist-tiny model pruned-k0.5
(trained here: learned 16x16 block and neuron masks at density 0.5, token
keep rate 0.5 in layers 0,1,2) on the first 16 MNIST test images, through
the u250 topology.

Model and weights
  -model NAME      mnist-tiny (default), deit-tiny, deit-small or deit-base
                     e.g. -model deit-small
  -variant NAME    embedded mnist-tiny weights, each with its own pruning:
                   {variants} (default {default});
                   or random for seeded random weights
                     e.g. -variant dense
  -weights FILE    safetensors checkpoint (timm or Hugging Face layout); its
                   vitflow.pruning metadata, if any, gives the pruning
                   (default: the embedded model for mnist-tiny, seeded random
                   weights for DeiT)
                     e.g. -weights deit_small_distilled.safetensors
  -seed N          seed of the random weights and random images (default 1)
                     e.g. -seed 7

Pruning: weights that come with a pruning (embedded, or a file with
metadata) keep their masks unless -block or -density is given, and their token
dropping unless -keep or -td is; other weights are pruned one-shot by weight
magnitude with these settings.
  -block B         side of the square weight blocks and of the MPCA tiles;
                   must divide the head dimension (default 16)
                     e.g. -block 32
  -density D       kept fraction of Q/K/V/Proj blocks and MLP neurons, in
                   (0, 1]; 1 is no static pruning (default 0.5)
                     e.g. -density 1
  -keep K          token keep rate of the token-dropping layers, in (0, 1];
                   1 is no token dropping (default 0.5 for mnist-tiny, 0.7 for DeiT)
                     e.g. -keep 0.7
  -td LIST         comma-separated 0-indexed token-dropping layers; empty or
                   "none" for none (default 0,1,2 for mnist-tiny, 2,6,9 for DeiT)
                     e.g. -td 2,6,9

Accelerator
  -topology NAME|FILE  preset (paper, u250, small) or a TOML description,
                   which may start with base = "u250" (default u250)
                     e.g. -topology paper   or   -topology my-card.toml
  -balance POLICY  load-balancing policy overriding the topology's: ideal,
                   static or balanced
                     e.g. -balance static
  -reference       run only the golden forward pass, no accelerator (fast
                   accuracy runs; the estimator is still reported)
                     e.g. -reference -images 1000
  -timing-only     time the accelerator without the numerics that cannot
                   change its timing: the same cycles and statistics, no
                   predictions (the output says so); exact because timing
                   depends on kept tokens only through their count and on
                   the weights only through the masks
                     e.g. -model deit-small -images 4 -timing-only
  -trace FILE      write a Perfetto trace of the simulated run (open it in
                   ui.perfetto.dev), of at most 16 images; a regular file is
                   replaced whole, a symlink or pipe written through
                     e.g. -trace run.json
  -trace-images LIST  trace only these images of the run: indices and
                   ranges (default all)
                     e.g. -trace run.json -trace-images 0,2
  -trace-layers LIST  trace only these encoder layers (the patch embedding
                   and classifier only when every layer is traced)
                     e.g. -trace run.json -trace-layers 3-5
  -trace-events N  cap on the trace's events (default 1000000): a longer
                   trace ends at the cycle before which it holds everything,
                   marked in the trace and said on stderr
                     e.g. -trace run.json -trace-events 200000
  -svg FILE        write an SVG chart of each layer's critical path by op and
                   unit beside the estimator's (open it in a browser); the
                   same plot as the HTML report's
                     e.g. -svg layers.svg
  -print-topology  print the topology (preset or file) as a complete TOML
                   file to edit, and exit
                     e.g. -topology u250 -print-topology > my-card.toml
  -size-fifos      find the smallest depth of every FIFO a topology sizes
                   that keeps the run's images within -size-tolerance of
                   unbounded FIFOs, print the bytes saved per FIFO, and exit
                     e.g. -model deit-small -images 1 -size-fifos
  -size-tolerance F  latency allowed above unbounded FIFOs, as a fraction
                   (default 0.01)
                     e.g. -size-fifos -size-tolerance 0.05
  -size-out FILE   write the sized topology as a TOML file to run
                     e.g. -size-fifos -size-out sized.toml

Inputs
  -images N        the first N MNIST test images (mnist-tiny), or N seeded
                   random images (DeiT models), 1..10000 (default 16)
                     e.g. -images 100
  -image FILE      a PNG or JPEG image, centre-cropped and resized for the
                   model; repeatable, at most 10000 times; excludes -images
                     e.g. -image cat.jpg -image dog.png

  Memory does not grow with the image count: images are decoded when they
  are used, the reference runs one at a time, and the simulator runs chunks
  of 16 images one after another on one built accelerator and adds up their
  results (the pipeline drains between chunks, at most one image's fill per
  16 images). Only the predictions, and the logits with -logits, are kept for
  every image.

Output
  -json            print the machine-readable JSON report on stdout, nothing else
                     e.g. -json > report.json
  -logits          add each image's logits to the JSON report (needs -json)
                     e.g. -json -logits
  -html FILE       write the report as one self-contained HTML page (no
                   network needed): configuration, summary, the critical
                   path by cause, plots of layers, units, FIFO occupancy, PE
                   load and tokens, and sortable tables
                     e.g. -html report.html
  -compare A B...  compare reports written by -json, the first as the
                   baseline: settings that differ, latency, per-layer and
                   per-cause deltas, the units and FIFOs that changed most;
                   takes only -html (draws them) and -json
                     e.g. -compare static.json balanced.json -html diff.html
  -h               this help

  A progress bar (images done, simulated cycles, time left) shows on stderr
  when stderr is a terminal and the run takes more than a second.

Sweeps: go run ./cmd/run sweep -h (every combination of topology and
pruning settings, with Pareto fronts).

Exit status: 0 on success, 1 when the run fails (including unreadable or
invalid files: weights, images, topology files), 2 for bad usage.
`
