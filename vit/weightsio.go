package vit

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"vitflow/internal/safefile"
)

// Layout names how a checkpoint's tensors are called and shaped.
type Layout int

const (
	// LayoutTimm is timm's VisionTransformer / DeiT: cls_token, dist_token,
	// pos_embed, patch_embed.proj, blocks.{i}.attn.qkv (Q, K, V fused), ...
	LayoutTimm Layout = iota
	// LayoutHF is Hugging Face transformers' DeiT: deit.embeddings.*,
	// deit.encoder.layer.{i}.attention.attention.query/key/value, ...,
	// deit.layernorm, cls_classifier.
	LayoutHF
)

func (l Layout) String() string {
	switch l {
	case LayoutTimm:
		return "timm"
	case LayoutHF:
		return "hf"
	}
	return fmt.Sprintf("Layout(%d)", int(l))
}

// ParseLayout parses "timm" or "hf".
func ParseLayout(s string) (Layout, error) {
	switch strings.ToLower(s) {
	case "timm":
		return LayoutTimm, nil
	case "hf", "huggingface":
		return LayoutHF, nil
	}
	return 0, fmt.Errorf("unknown weights layout %q (timm or hf)", s)
}

// PruningMetadataKey is the safetensors metadata key holding EncodePruning's JSON.
const PruningMetadataKey = "vitflow.pruning"

// part is one of our parameters inside a checkpoint tensor: rows×cols in our
// [in × out] layout, stored transposed ([out × in], as torch's Linear) when t.
type part struct {
	dst        *[]float32
	rows, cols int
	t          bool
}

// fileTensor is one checkpoint tensor: its parts stacked along the first axis.
type fileTensor struct {
	name  string
	shape []int
	parts []part
}

// checkpointTensors describes every tensor of w (sized by w.Config, with
// Config.Depth layers) in the given layout.
func checkpointTensors(w *Weights, layout Layout) []fileTensor {
	c := w.Config
	d, hid := c.Dim, c.MLPHidden
	vec := func(dst *[]float32, n int) part { return part{dst, 1, n, false} }
	lin := func(dst *[]float32, in, out int) part { return part{dst, in, out, true} }
	one := func(name string, shape []int, p part) fileTensor { return fileTensor{name, shape, []part{p}} }
	token := func(name string, dst *[]float32) fileTensor { return one(name, []int{1, 1, d}, vec(dst, d)) }
	linear := func(prefix string, wdst, bdst *[]float32, in, out int) []fileTensor {
		return []fileTensor{
			one(prefix+".weight", []int{out, in}, lin(wdst, in, out)),
			one(prefix+".bias", []int{out}, vec(bdst, out)),
		}
	}
	norm := func(prefix string, wdst, bdst *[]float32) []fileTensor {
		return []fileTensor{one(prefix+".weight", []int{d}, vec(wdst, d)), one(prefix+".bias", []int{d}, vec(bdst, d))}
	}
	patchShape := []int{d, c.InChans, c.PatchSize, c.PatchSize}
	posShape := []int{1, c.Tokens(), d}

	var ts []fileTensor
	if layout == LayoutTimm {
		ts = append(ts, token("cls_token", &w.ClsToken))
		if c.DistToken {
			ts = append(ts, token("dist_token", &w.DistToken))
		}
		ts = append(ts,
			one("pos_embed", posShape, vec(&w.PosEmbed, c.Tokens()*d)),
			one("patch_embed.proj.weight", patchShape, lin(&w.PatchW, c.PatchLen(), d)),
			one("patch_embed.proj.bias", []int{d}, vec(&w.PatchB, d)))
		for i := range w.Layers {
			l := &w.Layers[i]
			p := fmt.Sprintf("blocks.%d.", i)
			ts = append(ts, norm(p+"norm1", &l.Norm1W, &l.Norm1B)...)
			ts = append(ts,
				fileTensor{p + "attn.qkv.weight", []int{3 * d, d}, []part{lin(&l.QW, d, d), lin(&l.KW, d, d), lin(&l.VW, d, d)}},
				fileTensor{p + "attn.qkv.bias", []int{3 * d}, []part{vec(&l.QB, d), vec(&l.KB, d), vec(&l.VB, d)}})
			ts = append(ts, linear(p+"attn.proj", &l.ProjW, &l.ProjB, d, d)...)
			ts = append(ts, norm(p+"norm2", &l.Norm2W, &l.Norm2B)...)
			ts = append(ts, linear(p+"mlp.fc1", &l.FC1W, &l.FC1B, d, hid)...)
			ts = append(ts, linear(p+"mlp.fc2", &l.FC2W, &l.FC2B, hid, d)...)
		}
		ts = append(ts, norm("norm", &w.NormW, &w.NormB)...)
		return append(ts, linear("head", &w.HeadW, &w.HeadB, d, c.NumClasses)...)
	}
	ts = append(ts, token("deit.embeddings.cls_token", &w.ClsToken))
	if c.DistToken {
		ts = append(ts, token("deit.embeddings.distillation_token", &w.DistToken))
	}
	ts = append(ts,
		one("deit.embeddings.position_embeddings", posShape, vec(&w.PosEmbed, c.Tokens()*d)),
		one("deit.embeddings.patch_embeddings.projection.weight", patchShape, lin(&w.PatchW, c.PatchLen(), d)),
		one("deit.embeddings.patch_embeddings.projection.bias", []int{d}, vec(&w.PatchB, d)))
	for i := range w.Layers {
		l := &w.Layers[i]
		p := fmt.Sprintf("deit.encoder.layer.%d.", i)
		ts = append(ts, linear(p+"attention.attention.query", &l.QW, &l.QB, d, d)...)
		ts = append(ts, linear(p+"attention.attention.key", &l.KW, &l.KB, d, d)...)
		ts = append(ts, linear(p+"attention.attention.value", &l.VW, &l.VB, d, d)...)
		ts = append(ts, linear(p+"attention.output.dense", &l.ProjW, &l.ProjB, d, d)...)
		ts = append(ts, linear(p+"intermediate.dense", &l.FC1W, &l.FC1B, d, hid)...)
		ts = append(ts, linear(p+"output.dense", &l.FC2W, &l.FC2B, hid, d)...)
		ts = append(ts, norm(p+"layernorm_before", &l.Norm1W, &l.Norm1B)...)
		ts = append(ts, norm(p+"layernorm_after", &l.Norm2W, &l.Norm2B)...)
	}
	ts = append(ts, norm("deit.layernorm", &w.NormW, &w.NormB)...)
	return append(ts, linear("cls_classifier", &w.HeadW, &w.HeadB, d, c.NumClasses)...)
}

// detectLayout tells the layout of a checkpoint from its tensor names.
func detectLayout(byName map[string]*Tensor) (Layout, error) {
	switch {
	case byName["patch_embed.proj.weight"] != nil:
		return LayoutTimm, nil
	case byName["deit.embeddings.patch_embeddings.projection.weight"] != nil:
		return LayoutHF, nil
	}
	return 0, errNoLayout
}

// LoadWeights reads a safetensors checkpoint of a model shaped cfg, in the
// timm or the Hugging Face DeiT layout (detected from the tensor names), and
// returns the weights and the file's metadata. Tensors the model does not use
// (timm's head_dist, HF's distillation_classifier) are ignored; a missing
// tensor, a shape that disagrees with cfg, or a NaN or infinity in a used
// tensor is an error naming the file and the tensor. cfg.LNEps is used as
// it is (Hugging Face DeiT configs say 1e-12 where timm says 1e-6: a
// difference far below float32 resolution of unit-variance activations).
// A path that is not a regular file after following symlinks (a named pipe
// would block) is an error.
func LoadWeights(path string, cfg Config) (*Weights, map[string]string, error) {
	if err := safefile.CheckRegular(path); err != nil {
		return nil, nil, fmt.Errorf("load weights: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("load weights: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("load weights %q: %w", path, err)
	}
	return ReadWeights(f, st.Size(), path, cfg)
}

// ReadWeights is LoadWeights for a safetensors file of size bytes held by r
// (embedded data, say); errors name it source.
func ReadWeights(r io.ReaderAt, size int64, source string, cfg Config) (*Weights, map[string]string, error) {
	fail := func(err error) (*Weights, map[string]string, error) {
		return nil, nil, fmt.Errorf("load weights %q: %w", source, err)
	}
	if err := cfg.Validate(); err != nil {
		return fail(err)
	}
	tensors, meta, err := ReadSafetensors(r, size)
	if err != nil {
		return fail(err)
	}
	byName := make(map[string]*Tensor, len(tensors))
	for i := range tensors {
		byName[tensors[i].Name] = &tensors[i]
	}
	layout, err := detectLayout(byName)
	if err != nil {
		return fail(err)
	}
	w := &Weights{Config: cfg, Layers: make([]Layer, cfg.Depth)}
	for _, ft := range checkpointTensors(w, layout) {
		t := lookupTensor(byName, layout, ft.name)
		if t == nil {
			return fail(&ModelMismatchError{fmt.Sprintf("tensor %q: missing (%s layout, model %s)", ft.name, layout, cfg.Name),
				cfg.Name, matchingPreset(byName, layout)})
		}
		if !slices.Equal(t.Shape, ft.shape) {
			return fail(&ModelMismatchError{fmt.Sprintf("tensor %q: shape %v, model %s needs %v", t.Name, t.Shape, cfg.Name, ft.shape),
				cfg.Name, matchingPreset(byName, layout)})
		}
		if err := checkFinite(t.Data); err != nil {
			return fail(fmt.Errorf("tensor %q: %w", t.Name, err))
		}
		ft.scatter(t.Data)
	}
	return w, meta, nil
}

// ModelMismatchError is a weights file whose tensors do not fit the model
// asked for. Looks is the preset whose every tensor the file holds with the
// right shape, if one does, so that a command can say which model to ask for.
type ModelMismatchError struct {
	Detail string // which tensor does not fit, and how
	Model  string // the model asked for
	Looks  string // the matching preset, or ""
}

func (e *ModelMismatchError) Error() string {
	if e.Looks == "" {
		return e.Detail
	}
	return fmt.Sprintf("%s: the file holds a %s, not a %s", e.Detail, e.Looks, e.Model)
}

// lookupTensor finds the file tensor called name.
func lookupTensor(byName map[string]*Tensor, layout Layout, name string) *Tensor {
	t := byName[name]
	if t == nil && layout == LayoutHF && strings.HasPrefix(name, "cls_classifier.") {
		// DeiTForImageClassification (not distilled) calls its head "classifier".
		t = byName[strings.TrimPrefix(name, "cls_")]
	}
	return t
}

// matchingPreset is the first preset all of whose tensors the file holds
// with their shapes, or "". It compares shapes only: no data is copied.
func matchingPreset(byName map[string]*Tensor, layout Layout) string {
	for _, cfg := range presets {
		w := &Weights{Config: cfg, Layers: make([]Layer, cfg.Depth)}
		fits := true
		for _, ft := range checkpointTensors(w, layout) {
			if t := lookupTensor(byName, layout, ft.name); t == nil || !slices.Equal(t.Shape, ft.shape) {
				fits = false
				break
			}
		}
		if fits {
			return cfg.Name
		}
	}
	return ""
}

// scatter copies a checkpoint tensor's data into its parts.
func (ft fileTensor) scatter(data []float32) {
	for _, p := range ft.parts {
		n := p.rows * p.cols
		chunk := data[:n]
		data = data[n:]
		dst := make([]float32, n)
		if p.t {
			transpose(dst, chunk, p.cols, p.rows)
		} else {
			copy(dst, chunk)
		}
		*p.dst = dst
	}
}

// gather builds a checkpoint tensor's data from its parts.
func (ft fileTensor) gather() []float32 {
	n := 0
	for _, p := range ft.parts {
		n += p.rows * p.cols
	}
	data := make([]float32, n)
	at := 0
	for _, p := range ft.parts {
		part := data[at : at+p.rows*p.cols]
		if p.t {
			transpose(part, *p.dst, p.rows, p.cols)
		} else {
			copy(part, *p.dst)
		}
		at += len(part)
	}
	return data
}

// transpose writes the transpose of the rows×cols matrix src into dst,
// tile by tile so that both sides stay in cache.
func transpose(dst, src []float32, rows, cols int) {
	const tile = 32
	for r0 := 0; r0 < rows; r0 += tile {
		for c0 := 0; c0 < cols; c0 += tile {
			for r := r0; r < min(r0+tile, rows); r++ {
				for c := c0; c < min(c0+tile, cols); c++ {
					dst[c*rows+r] = src[r*cols+c]
				}
			}
		}
	}
}

// SaveWeights writes w as a safetensors checkpoint in the given layout with
// metadata meta (plus "format": "pt", which transformers expects, unless meta
// sets it). A regular file or nothing at path is replaced atomically, so path
// never holds a half-written checkpoint; a symlink, named pipe or device is
// written through, never replaced (package safefile).
func SaveWeights(path string, w *Weights, layout Layout, meta map[string]string) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("save weights %q: %w", path, err)
		}
	}()
	if layout != LayoutTimm && layout != LayoutHF {
		return fmt.Errorf("unknown layout %v", layout)
	}
	if err := w.Validate(); err != nil {
		return err
	}
	var tensors []Tensor
	for _, ft := range checkpointTensors(w, layout) {
		tensors = append(tensors, Tensor{Name: ft.name, Shape: ft.shape, Data: ft.gather()})
	}
	m := map[string]string{"format": "pt"}
	for k, v := range meta {
		m[k] = v
	}
	return safefile.Write(path, func(w io.Writer) error { return WriteSafetensors(w, tensors, m) })
}

// pruningJSON is the serialised form of a Pruning: masks as strings of '0'
// and '1' (row-major blocks; neurons in order), "" for a nil mask.
type pruningJSON struct {
	Block    int           `json:"block"`
	Keep     float64       `json:"keep"`
	TDLayers []int         `json:"td_layers"`
	Layers   []maskSetJSON `json:"layers,omitempty"`
}

type maskSetJSON struct {
	Q       string `json:"q,omitempty"`
	K       string `json:"k,omitempty"`
	V       string `json:"v,omitempty"`
	Proj    string `json:"proj,omitempty"`
	Neurons string `json:"neurons,omitempty"`
}

// EncodePruning serialises p as JSON, for the metadata key PruningMetadataKey.
func EncodePruning(p *Pruning) (string, error) {
	if p == nil {
		return "", fmt.Errorf("encode pruning: nil")
	}
	out := pruningJSON{Block: p.Block, Keep: p.Keep, TDLayers: p.TDLayers}
	for _, m := range p.Layers {
		out.Layers = append(out.Layers, maskSetJSON{bits(m.Q), bits(m.K), bits(m.V), bits(m.Proj), bits(m.Neurons)})
	}
	b, err := json.Marshal(out)
	if err != nil {
		return "", fmt.Errorf("encode pruning: %w", err)
	}
	return string(b), nil
}

// DecodePruning parses EncodePruning's JSON and validates it against cfg.
func DecodePruning(s string, cfg Config) (*Pruning, error) {
	var in pruningJSON
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, fmt.Errorf("decode pruning: %w", err)
	}
	p := &Pruning{Block: in.Block, Keep: in.Keep, TDLayers: in.TDLayers}
	for i, m := range in.Layers {
		var lm LayerMask
		for _, f := range []struct {
			name string
			s    string
			dst  *[]bool
		}{{"q", m.Q, &lm.Q}, {"k", m.K, &lm.K}, {"v", m.V, &lm.V}, {"proj", m.Proj, &lm.Proj}, {"neurons", m.Neurons, &lm.Neurons}} {
			mask, err := unbits(f.s)
			if err != nil {
				return nil, fmt.Errorf("decode pruning: layer %d: %s mask: %w", i, f.name, err)
			}
			*f.dst = mask
		}
		p.Layers = append(p.Layers, lm)
	}
	if err := p.Validate(cfg); err != nil {
		return nil, fmt.Errorf("decode %w", err)
	}
	return p, nil
}

func bits(mask []bool) string {
	b := make([]byte, len(mask))
	for i, k := range mask {
		b[i] = '0'
		if k {
			b[i] = '1'
		}
	}
	return string(b)
}

func unbits(s string) ([]bool, error) {
	if s == "" {
		return nil, nil
	}
	mask := make([]bool, len(s))
	for i := range len(s) {
		switch s[i] {
		case '1':
			mask[i] = true
		case '0':
		default:
			return nil, fmt.Errorf("character %q at %d is not 0 or 1", s[i], i)
		}
	}
	return mask, nil
}
