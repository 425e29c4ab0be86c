package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"vitflow/models"
	"vitflow/prune"
	"vitflow/report"
	"vitflow/vit"
)

// model is a model with its weights and pruning, ready to run.
type model struct {
	cfg     vit.Config
	weights *vit.Weights
	pruning *vit.Pruning
	// desc fills the report's weights and pruning fields.
	weightsDesc string
	variant     *models.Meta // the embedded model, if one is used
	pruningDesc report.Pruning
}

// loadWeights loads or generates the weights -model, -weights, -variant
// and -seed name, and the pruning that came with them (nil if none) and
// where it came from ("embedded" or "file").
func loadWeights(o *options) (m *model, filePruning *vit.Pruning, source string, err error) {
	cfg, err := vit.Preset(o.model)
	if err != nil {
		return nil, nil, "", usagef("-model: %w", err)
	}
	m = &model{cfg: cfg}
	source = "file"
	switch {
	case o.weights == "" && (o.variant == "" || o.variant == randomVariant):
		m.weights = vit.RandomWeights(cfg, o.seed)
		m.weightsDesc = "random"
	case o.weights == "":
		w, p, meta, err := models.Load(o.variant)
		if err != nil {
			return nil, nil, "", err
		}
		m.weights, m.weightsDesc, m.variant = w, "embedded", &meta
		filePruning, source = p, "embedded"
	default:
		w, meta, err := vit.LoadWeights(o.weights, cfg)
		if mm := (*vit.ModelMismatchError)(nil); errors.As(err, &mm) && mm.Looks != "" {
			return nil, nil, "", fmt.Errorf("%w: pass -model %s", err, mm.Looks)
		}
		if err != nil {
			return nil, nil, "", err
		}
		m.weights, m.weightsDesc = w, o.weights
		if s, ok := meta[vit.PruningMetadataKey]; ok {
			filePruning, err = vit.DecodePruning(s, cfg)
			if err != nil {
				return nil, nil, "", fmt.Errorf("weights %q: metadata %s: %w", o.weights, vit.PruningMetadataKey, err)
			}
		}
	}
	return m, filePruning, source, nil
}

// loadModel loads or generates the weights and decides the pruning. Weights
// that come with a pruning (an embedded model, or a file with pruning
// metadata) keep their masks unless -block or -density is given, and their
// token dropping unless -keep or -td is; otherwise the masks are one-shot
// magnitude pruning and -keep and -td (or the model's defaults) set the token
// dropping.
func loadModel(o *options) (*model, error) {
	m, filePruning, source, err := loadWeights(o)
	if err != nil {
		return nil, err
	}
	cfg := m.cfg
	p := &vit.Pruning{Block: o.block, Keep: o.keep, TDLayers: slices.Clone(o.td)}
	desc := report.Pruning{Source: "none", Block: o.block, Density: 1}
	flagMasks := o.set["block"] || o.set["density"]
	switch {
	case filePruning != nil && !flagMasks && filePruning.Layers == nil:
		// The weights say they are dense.
	case filePruning != nil && !flagMasks:
		p.Block, p.Layers = filePruning.Block, filePruning.Layers
		desc.Source, desc.Block, desc.Density = source, filePruning.Block, maskDensity(filePruning)
	case o.density < 1:
		mp, err := prune.Magnitude(m.weights, o.block, o.density)
		if err != nil {
			return nil, usagef("%w", err)
		}
		p.Layers = mp.Layers
		desc.Source, desc.Density = "magnitude", o.density
	}
	if filePruning != nil && !o.set["keep"] && !o.set["td"] {
		p.Keep, p.TDLayers = filePruning.Keep, slices.Clone(filePruning.TDLayers)
	}
	if p.Keep == 1 || len(p.TDLayers) == 0 {
		p.Keep, p.TDLayers = 1, []int{}
	}
	if err := p.Validate(cfg); err != nil {
		return nil, usagef("%w", err)
	}
	desc.Keep, desc.TDLayers = p.Keep, p.TDLayers
	m.pruning, m.pruningDesc = p, desc
	return m, nil
}

// maskDensity is the fraction of Q, K, V and Proj blocks that p keeps.
func maskDensity(p *vit.Pruning) float64 {
	kept, all := 0, 0
	for _, l := range p.Layers {
		for _, mask := range [][]bool{l.Q, l.K, l.V, l.Proj} {
			for _, k := range mask {
				all++
				if k {
					kept++
				}
			}
		}
	}
	if all == 0 {
		return 1
	}
	return float64(kept) / float64(all)
}

// inputs are the images of a run, loaded (decoded, preprocessed) only when
// asked for, a chunk at a time: memory does not grow with the image count.
type inputs struct {
	count  int
	load   func(i int) ([]float32, error) // image i, 0 <= i < count
	labels []int                          // nil when unknown
	desc   string
	random bool // seeded random images (-seed chose them)
}

// loadInputs prepares the -image files, or else the first -images MNIST
// test images (mnist-tiny) or as many seeded random images (other models).
// Image files are checked here but decoded when they are used.
func loadInputs(o *options, cfg vit.Config) (*inputs, error) {
	in := &inputs{}
	switch {
	case len(o.imageFiles) > 0:
		in.count = len(o.imageFiles)
		in.load = func(i int) ([]float32, error) { return vit.LoadImage(o.imageFiles[i], cfg) } // it names the file
		// Decode every file now and drop it, so that a bad one fails before
		// anything runs; each is decoded again when its chunk runs.
		for i := range in.count {
			if _, err := in.load(i); err != nil {
				return nil, err
			}
		}
		in.desc = "image files"
	case cfg.InChans == 1 && cfg.ImageSize == 28:
		test, err := vit.LoadMNISTTest()
		if err != nil {
			return nil, err
		}
		in.count = min(o.images, test.Count())
		for i := range in.count {
			_, label := test.Get(i)
			in.labels = append(in.labels, int(label))
		}
		in.load = func(i int) ([]float32, error) {
			img, _ := test.Get(i)
			return vit.MNISTPixels(img, cfg), nil
		}
		in.desc = mnistRange(in.count)
	default:
		in.count = o.images
		in.load = func(i int) ([]float32, error) { return randomImage(cfg, o.seed, uint64(i)), nil }
		in.desc = fmt.Sprintf("random images (seed %d): no labels", o.seed)
		in.random = true
	}
	return in, nil
}

// randomImage is a seeded image of standard-normal pixels, which is what
// normalised natural images look like to the model in distribution.
func randomImage(cfg vit.Config, seed, index uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, index))
	px := make([]float32, cfg.InChans*cfg.ImageSize*cfg.ImageSize)
	for i := range px {
		px[i] = float32(rng.NormFloat64())
	}
	return px
}

// mnistRange names the first n MNIST test images.
func mnistRange(n int) string {
	if n == 1 {
		return "MNIST test image 0"
	}
	return fmt.Sprintf("MNIST test images 0-%d", n-1)
}
