// Package models ships the mnist-tiny ViTs this project trained itself on
// MNIST (cmd/train): a dense model and pruned ones (16×16 block and neuron
// masks at density 0.5, learned or by magnitude, token dropping in layers
// 0-2, distilled from the dense model), embedded in the
// binary so that nothing has to be downloaded. prune/TRAINING.md gives their
// accuracy, computation and the commands that reproduce them.
package models

import (
	"bytes"
	"embed"
	"fmt"
	"strconv"
	"strings"

	"vitflow/prune"
	"vitflow/vit"
)

//go:embed *.safetensors
var files embed.FS

// Model is the preset all the embedded models are shaped as.
const Model = "mnist-tiny"

// Default is the variant used when none is chosen: the keep-0.5 pruned model.
const Default = "pruned-k0.5"

type variant struct{ name, file, about string }

var variants = []variant{
	{"dense", "dense.safetensors", "dense mnist-tiny trained from scratch"},
	{"pruned-k0.7", "pruned-k0.7.safetensors", "density 0.5 blocks and neurons, token keep rate 0.7 in layers 0-2"},
	{"pruned-k0.5", "pruned-k0.5.safetensors", "density 0.5 blocks and neurons, token keep rate 0.5 in layers 0-2 (default)"},
	{"pruned-k0.5-magnitude", "pruned-k0.5-magnitude.safetensors", "as pruned-k0.5, masks by weight magnitude during the same training instead of learned scores"},
}

// Variants lists the embedded models' names.
func Variants() []string {
	names := make([]string, len(variants))
	for i, v := range variants {
		names[i] = v.name
	}
	return names
}

// Describe returns a one-line description of a variant, "" for an unknown name.
func Describe(name string) string { return lookup(name).about }

// lookup returns the named variant, the zero variant for an unknown name.
func lookup(name string) variant {
	for _, v := range variants {
		if v.name == name {
			return v
		}
	}
	return variant{}
}

// Meta is what a model file records about itself.
type Meta struct {
	Variant string
	// TestAccuracy is the top-1 accuracy of the reference forward pass on the
	// 10,000 MNIST test images, TestCorrect the count behind it.
	TestAccuracy float64
	TestCorrect  int
	// SubsetCorrect is the count right among the first prune.SubsetImages test images.
	SubsetCorrect int
	// Raw is the file's whole metadata (training command, pruning JSON, ...).
	Raw map[string]string
}

// Load returns the weights, the pruning (Keep 1 and no masks for the dense
// model) and the metadata of the named variant.
func Load(name string) (*vit.Weights, *vit.Pruning, Meta, error) {
	fail := func(err error) (*vit.Weights, *vit.Pruning, Meta, error) {
		return nil, nil, Meta{}, fmt.Errorf("model %s variant %q: %w", Model, name, err)
	}
	file := lookup(name).file
	if file == "" {
		return fail(fmt.Errorf("unknown variant (have %s)", strings.Join(Variants(), ", ")))
	}
	cfg, err := vit.Preset(Model)
	if err != nil {
		return fail(err)
	}
	w, raw, err := loadEmbedded(file, cfg)
	if err != nil {
		return fail(err)
	}
	p := &vit.Pruning{Keep: 1}
	if s, ok := raw[prune.MetaPruning]; ok {
		if p, err = vit.DecodePruning(s, cfg); err != nil {
			return fail(err)
		}
	}
	meta := Meta{Variant: name, Raw: raw}
	for _, f := range []struct {
		key string
		dst any
	}{{prune.MetaTestAccuracy, &meta.TestAccuracy}, {prune.MetaTestCorrect, &meta.TestCorrect}, {prune.MetaSubsetCorrect, &meta.SubsetCorrect}} {
		s, ok := raw[f.key]
		if !ok {
			return fail(fmt.Errorf("metadata %s missing", f.key))
		}
		switch dst := f.dst.(type) {
		case *float64:
			*dst, err = strconv.ParseFloat(s, 64)
		case *int:
			*dst, err = strconv.Atoi(s)
		}
		if err != nil {
			return fail(fmt.Errorf("metadata %s: %w", f.key, err))
		}
	}
	return w, p, meta, nil
}

// loadEmbedded reads an embedded safetensors file.
func loadEmbedded(file string, cfg vit.Config) (*vit.Weights, map[string]string, error) {
	data, err := files.ReadFile(file)
	if err != nil {
		return nil, nil, err
	}
	return vit.ReadWeights(bytes.NewReader(data), int64(len(data)), "embedded "+file, cfg)
}
