// Package sweep runs design-space explorations: the cross product of
// settings of the accelerator (any topology key) and of the pruning
// (block, density, keep rate, token-dropping layers), every point simulated
// on its own accelerator, rows written as points finish.
//
// A sweep is planned before anything runs, so that every bad setting fails
// at once with one line. The points run through the control plane
// (runtime/host), a bounded number at a time; a failing point answers with
// its error, which becomes its row, and the others go on. Each point is
// identified by a hash of its full settings and the model, so that
// re-running an interrupted sweep into the same folder runs only the points
// that have no row yet; once all have, the files are rewritten in point
// order, equal to an uninterrupted run's.
package sweep

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"vitflow/prune"
	"vitflow/report"
	"vitflow/topology"
	"vitflow/vit"
)

// MaxPoints is the largest sweep Plan accepts without Spec.Force, and
// MaxForced the largest with it: a planned point holds its whole
// description, about a kilobyte.
const (
	MaxPoints = 1000
	MaxForced = 100_000
)

// hashVersion names the simulator in the points' hashes: raise it when a
// change makes the rows of an older vitflow wrong, so that a resumed sweep
// runs its points again instead of reusing them.
const hashVersion = "vitflow sweep point v1"

// Spec is a sweep: the model and its images, the base accelerator and
// pruning, and the axes that vary.
type Spec struct {
	// Weights is the model; its Config names the shape. WeightsID names
	// the weights in the points' hashes ("random seed 1", a file's digest).
	Weights   *vit.Weights
	WeightsID string
	// Base is the accelerator every point starts from.
	Base topology.Description
	// Pruning is the pruning of every point where an axis does not change
	// it. The masks are magnitude pruning of Weights at the point's block
	// and density (none at density 1).
	Pruning PruningSettings
	// Axes vary in order, the last fastest.
	Axes []Axis
	// Images is the number of images each point runs; Image loads image i,
	// and Labels (nil when unknown) give each point's accuracy. InputsID
	// names the images in the hashes.
	Images   int
	Image    func(i int) ([]float32, error)
	Labels   []int
	InputsID string
	// TimingOnly skips the numerics that cannot change timing (see
	// topology's package doc for when that is exact): no predictions, no
	// accuracy.
	TimingOnly bool
	// Force allows more than MaxPoints points.
	Force bool
}

// Point is one planned configuration.
type Point struct {
	Index int
	// Settings are the axes' values, in axis order.
	Settings []report.Setting
	Desc     topology.Description
	Pruning  PruningSettings
	// Hash identifies the point's full settings and model.
	Hash string
}

// PruningSettings are one point's pruning.
type PruningSettings struct {
	Block    int
	Density  float64
	Keep     float64
	TDLayers []int
}

// Plan checks s and lists its points, or returns the first bad setting.
func Plan(s *Spec) ([]Point, error) {
	if s.Weights == nil {
		return nil, errors.New("sweep: no weights")
	}
	cfg := s.Weights.Config
	n := 1
	seen := map[string]bool{}
	for _, a := range s.Axes {
		if seen[a.Key] {
			return nil, fmt.Errorf("sweep: key %s swept twice", a.Key)
		}
		seen[a.Key] = true
		if len(a.Values) == 0 {
			return nil, fmt.Errorf("sweep: %s has no values", a.Key)
		}
		if err := checkKey(s.Base, a.Key); err != nil {
			return nil, err
		}
		n *= len(a.Values)
		if n > MaxPoints && !s.Force {
			return nil, fmt.Errorf("sweep: more than %d points (the axes multiply to %s so far); pass -force to run them all", MaxPoints, countAxes(s.Axes))
		}
		if n > MaxForced {
			return nil, fmt.Errorf("sweep: more than %d points (the axes multiply to %s so far), the most even with -force", MaxForced, countAxes(s.Axes))
		}
	}
	switch {
	case s.Images < 1:
		return nil, fmt.Errorf("sweep: %d images: want at least 1", s.Images)
	case s.Image == nil && !s.TimingOnly:
		return nil, errors.New("sweep: no images to load (Spec.Image)")
	case s.Labels != nil && len(s.Labels) != s.Images:
		return nil, fmt.Errorf("sweep: %d labels for %d images", len(s.Labels), s.Images)
	}
	points := make([]Point, n)
	idx := make([]int, len(s.Axes))
	byHash := map[string]int{}
	for i := range points {
		p, err := s.point(i, idx, cfg)
		if err != nil {
			return nil, err
		}
		if j, ok := byHash[p.Hash]; ok {
			return nil, fmt.Errorf("sweep: points %s and %s are the same configuration: list each value once", points[j].Name(), p.Name())
		}
		byHash[p.Hash] = i
		points[i] = p
		// Next index vector, the last axis fastest.
		for k := len(idx) - 1; k >= 0; k-- {
			if idx[k]++; idx[k] < len(s.Axes[k].Values) {
				break
			}
			idx[k] = 0
		}
	}
	return points, nil
}

// countAxes says how the axes multiply, e.g. "3 x 4 x 100".
func countAxes(axes []Axis) string {
	parts := make([]string, len(axes))
	for i, a := range axes {
		parts[i] = strconv.Itoa(len(a.Values))
	}
	return strings.Join(parts, " x ")
}

// checkKey refuses a key that is neither a pruning key nor a topology key.
func checkKey(base topology.Description, key string) error {
	if slices.Contains(pruningKeys, key) {
		return nil
	}
	if topology.IsKey(key) {
		return nil
	}
	return fmt.Errorf("sweep: unknown key %q: neither a pruning key (%s) nor a topology key (%s)",
		key, strings.Join(pruningKeys, ", "), strings.Join(topology.Keys(base.MPCA.H), ", "))
}

// point builds and checks the point of index vector idx.
func (s *Spec) point(i int, idx []int, cfg vit.Config) (Point, error) {
	p := Point{Index: i, Desc: s.Base}
	p.Desc.FIFO.Depths = maps.Clone(s.Base.FIFO.Depths)
	p.Pruning = s.Pruning
	p.Pruning.TDLayers = slices.Clone(s.Pruning.TDLayers)
	for k, a := range s.Axes {
		v := a.Values[idx[k]]
		p.Settings = append(p.Settings, report.Setting{Key: a.Key, Value: v})
		if err := p.set(a.Key, v, cfg); err != nil {
			return Point{}, fmt.Errorf("sweep: %s=%s: %w", a.Key, v, err)
		}
	}
	if err := p.Desc.Validate(); err != nil {
		return Point{}, fmt.Errorf("sweep: point %s: %w", p.Name(), err)
	}
	if err := p.Pruning.check(cfg); err != nil {
		return Point{}, fmt.Errorf("sweep: point %s: %w", p.Name(), err)
	}
	p.Hash = s.hash(p)
	return p, nil
}

// set applies one axis value.
func (p *Point) set(key, v string, cfg vit.Config) error {
	var err error
	switch key {
	case KeyBlock:
		p.Pruning.Block, err = strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
	case KeyDensity, KeyKeep:
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
		if key == KeyDensity {
			p.Pruning.Density = x
		} else {
			p.Pruning.Keep = x
		}
	case KeyTD:
		p.Pruning.TDLayers, err = parseTD(v, cfg)
	default:
		err = p.Desc.Set(key, v)
	}
	return err
}

// parseTD parses token-dropping layers written with slashes (2/6/9), since
// commas separate an axis's values; "none" is no layer.
func parseTD(v string, cfg vit.Config) ([]int, error) {
	if v == "none" {
		return []int{}, nil
	}
	var out []int
	for f := range strings.SplitSeq(v, "/") {
		l, err := strconv.Atoi(f)
		if err != nil || l < 0 || l >= cfg.Depth {
			return nil, fmt.Errorf("%q is not a layer of %s (0..%d; write layers as 2/6/9, or none)", f, cfg.Name, cfg.Depth-1)
		}
		if slices.Contains(out, l) {
			return nil, fmt.Errorf("layer %d listed twice", l)
		}
		out = append(out, l)
	}
	return out, nil
}

func (ps PruningSettings) check(cfg vit.Config) error {
	if err := prune.CheckBlock(cfg, ps.Block); err != nil {
		return err
	}
	if err := prune.CheckDensity(ps.Density); err != nil {
		return err
	}
	if !(ps.Keep > 0 && ps.Keep <= 1) {
		return fmt.Errorf("keep %v must be in (0, 1]", ps.Keep)
	}
	for i, l := range ps.TDLayers {
		if l < 0 || l >= cfg.Depth || slices.Contains(ps.TDLayers[:i], l) {
			return fmt.Errorf("token-dropping layers %v: each once, in 0..%d", ps.TDLayers, cfg.Depth-1)
		}
	}
	return nil
}

// pruning is the vit.Pruning of the point's settings with masks.
func (ps PruningSettings) pruning(masks *vit.Pruning) *vit.Pruning {
	p := &vit.Pruning{Block: ps.Block, Keep: ps.Keep, TDLayers: slices.Clone(ps.TDLayers)}
	if masks != nil {
		p.Layers = masks.Layers
	}
	if p.Keep == 1 || len(p.TDLayers) == 0 {
		p.Keep, p.TDLayers = 1, []int{}
	}
	return p
}

// Name is the point's settings as key=value pairs.
func (p Point) Name() string { return report.SettingsName(p.Settings) }

// hash digests everything that decides a point's results: the simulator's
// version, the model and weights, the images, the mode, the pruning and
// the whole description but its name, which only labels it.
func (s *Spec) hash(p Point) string {
	d := p.Desc
	d.Name = ""
	desc, _ := json.Marshal(d) // plain data, sorted maps: always encodes, always the same
	h := sha256.New()
	fmt.Fprintf(h, "%s\nmodel %s\nweights %s\nimages %d %s\ntiming-only %v\nblock %d density %v keep %v td %v\n%s",
		hashVersion, s.Weights.Config.Name, s.WeightsID, s.Images, s.InputsID, s.TimingOnly,
		p.Pruning.Block, p.Pruning.Density, p.Pruning.Keep, p.Pruning.TDLayers, desc)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// ctxErr wraps a cancelled sweep's error.
func ctxErr(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("sweep interrupted: %w", err)
	}
	return nil
}
