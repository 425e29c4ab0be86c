package vit

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawSafetensors builds a safetensors file from a header and a data section.
func rawSafetensors(header string, data []byte) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(out, header...), data...)
}

func TestWeightsRoundTripTimmAndHF(t *testing.T) {
	cfg := mustPreset(t, "deit-small")
	w := RandomWeights(cfg, 31)
	img := randomImage(cfg, 32)
	orig := w.tensors()
	dir := t.TempDir()
	var logits [][]float32
	for _, layout := range []Layout{LayoutTimm, LayoutHF} {
		path := filepath.Join(dir, layout.String()+".safetensors")
		require.NoError(t, SaveWeights(path, w, layout, map[string]string{"note": "random"}))
		got, meta, err := LoadWeights(path, cfg)
		require.NoError(t, err, layout)
		assert.Equal(t, map[string]string{"note": "random", "format": "pt"}, meta)
		for i, p := range got.tensors() {
			require.Equal(t, *orig[i].data, *p.data, "%s: %s", layout, p.name)
		}
		l, _, err := got.Forward(img, nil)
		require.NoError(t, err)
		logits = append(logits, l)
	}
	assert.Equal(t, logits[0], logits[1], "timm and Hugging Face layouts give identical logits")
}

// TestHFClassifierName loads a non-distilled Hugging Face DeiT, whose head is "classifier".
func TestHFClassifierName(t *testing.T) {
	cfg := mustPreset(t, "mnist-tiny")
	w := RandomWeights(cfg, 2)
	var tensors []Tensor
	for _, ft := range checkpointTensors(w, LayoutHF) {
		tensors = append(tensors, Tensor{strings.Replace(ft.name, "cls_classifier.", "classifier.", 1), ft.shape, ft.gather()})
	}
	var buf bytes.Buffer
	require.NoError(t, WriteSafetensors(&buf, tensors, nil))
	path := filepath.Join(t.TempDir(), "hf.safetensors")
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	got, _, err := LoadWeights(path, cfg)
	require.NoError(t, err)
	assert.Equal(t, w.HeadW, got.HeadW)
	assert.Equal(t, w.HeadB, got.HeadB)
}

// TestLayoutNames pins the checkpoint names and torch shapes of both layouts.
func TestLayoutNames(t *testing.T) {
	cfg := mustPreset(t, "deit-small")
	w := &Weights{Config: cfg, Layers: make([]Layer, cfg.Depth)}
	shapes := func(layout Layout) map[string]string {
		m := map[string]string{}
		for _, ft := range checkpointTensors(w, layout) {
			m[ft.name] = fmt.Sprint(ft.shape)
		}
		return m
	}
	timm := shapes(LayoutTimm)
	assert.Len(t, timm, 5+12*12+4)
	for name, shape := range map[string]string{
		"cls_token": "[1 1 384]", "dist_token": "[1 1 384]", "pos_embed": "[1 198 384]",
		"patch_embed.proj.weight": "[384 3 16 16]", "blocks.11.attn.qkv.weight": "[1152 384]",
		"blocks.0.attn.qkv.bias": "[1152]", "blocks.3.mlp.fc1.weight": "[1536 384]", "blocks.3.mlp.fc2.weight": "[384 1536]",
		"blocks.5.norm2.bias": "[384]", "blocks.5.attn.proj.weight": "[384 384]", "norm.weight": "[384]", "head.weight": "[1000 384]",
	} {
		assert.Equal(t, shape, timm[name], name)
	}
	hf := shapes(LayoutHF)
	assert.Len(t, hf, 5+12*16+4)
	for name, shape := range map[string]string{
		"deit.embeddings.cls_token": "[1 1 384]", "deit.embeddings.distillation_token": "[1 1 384]",
		"deit.embeddings.position_embeddings":                 "[1 198 384]",
		"deit.embeddings.patch_embeddings.projection.weight":  "[384 3 16 16]",
		"deit.encoder.layer.2.attention.attention.key.weight": "[384 384]",
		"deit.encoder.layer.2.attention.output.dense.bias":    "[384]",
		"deit.encoder.layer.7.intermediate.dense.weight":      "[1536 384]",
		"deit.encoder.layer.7.output.dense.weight":            "[384 1536]",
		"deit.encoder.layer.7.layernorm_before.weight":        "[384]",
		"deit.encoder.layer.7.layernorm_after.bias":           "[384]",
		"deit.layernorm.bias":                                 "[384]", "cls_classifier.weight": "[1000 384]",
	} {
		assert.Equal(t, shape, hf[name], name)
	}
}

// TestTorchOrientation checks that a torch Linear weight [out, in] and the
// fused qkv are transposed and split as torch computes y = x·Wᵀ + b.
func TestTorchOrientation(t *testing.T) {
	cfg := mustPreset(t, "mnist-tiny")
	w := RandomWeights(cfg, 1)
	path := filepath.Join(t.TempDir(), "m.safetensors")
	require.NoError(t, SaveWeights(path, w, LayoutTimm, nil))
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(t, err)
	tensors, _, err := ReadSafetensors(f, st.Size())
	require.NoError(t, err)
	byName := map[string]Tensor{}
	for _, ts := range tensors {
		byName[ts.Name] = ts
	}
	d := cfg.Dim
	qkv := byName["blocks.2.attn.qkv.weight"].Data // [3D, D]: row o is output feature o
	assert.Equal(t, w.Layers[2].QW[5*d+7], qkv[7*d+5], "Q: out 7, in 5")
	assert.Equal(t, w.Layers[2].KW[5*d+7], qkv[(d+7)*d+5], "K")
	assert.Equal(t, w.Layers[2].VW[5*d+7], qkv[(2*d+7)*d+5], "V")
	assert.Equal(t, w.Layers[2].VB[3], byName["blocks.2.attn.qkv.bias"].Data[2*d+3])
	fc1 := byName["blocks.1.mlp.fc1.weight"].Data // [hidden, D]
	assert.Equal(t, w.Layers[1].FC1W[3*cfg.MLPHidden+200], fc1[200*d+3])
	// Conv weight [D, C, P, P]: output channel 9, input row 2, column 3.
	conv := byName["patch_embed.proj.weight"].Data
	assert.Equal(t, w.PatchW[(2*4+3)*d+9], conv[9*16+2*4+3])
}

func TestReadSafetensorsDtypes(t *testing.T) {
	data := binary.LittleEndian.AppendUint32(nil, math.Float32bits(-1.5))
	for _, h := range []uint16{0x3c00, 0xc000, 0x0001, 0x7c00} { // F16 1, -2, 2^-24, +Inf
		data = binary.LittleEndian.AppendUint16(data, h)
	}
	data = binary.LittleEndian.AppendUint16(data, 0x3f80) // BF16 1
	data = binary.LittleEndian.AppendUint16(data, 0xc0a0) // BF16 -5
	hdr := `{"__metadata__":{"a":"b"},"f":{"dtype":"F32","shape":[],"data_offsets":[0,4]},` +
		`"h":{"dtype":"F16","shape":[2,2],"data_offsets":[4,12]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[12,16]}}`
	file := rawSafetensors(hdr, data)
	tensors, meta, err := ReadSafetensors(bytes.NewReader(file), int64(len(file)))
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"a": "b"}, meta)
	require.Len(t, tensors, 3)
	assert.Equal(t, Tensor{"f", nil, []float32{-1.5}}, tensors[0])
	assert.Equal(t, Tensor{"h", []int{2, 2}, []float32{1, -2, 1.0 / (1 << 24), float32(math.Inf(1))}}, tensors[1])
	assert.Equal(t, Tensor{"b", []int{2}, []float32{1, -5}}, tensors[2])
}

func TestHalfToFloatExhaustive(t *testing.T) {
	for h := range 1 << 16 {
		sign, exp, frac := h>>15, (h>>10)&0x1f, float64(h&0x3ff)
		var want float64
		switch exp {
		case 0x1f:
			want = math.Inf(1)
			if frac != 0 {
				want = math.NaN()
			}
		case 0:
			want = math.Ldexp(frac, -24)
		default:
			want = math.Ldexp(1+frac/1024, exp-15)
		}
		if sign == 1 {
			want = -want
		}
		got := float64(halfToFloat(uint16(h)))
		if math.IsNaN(want) {
			require.True(t, math.IsNaN(got), "%#04x", h)
			continue
		}
		require.Equal(t, want, got, "%#04x", h)
	}
}

// hugeReaderAt claims a size of 1 TiB; its bytes are a header length then zeros.
type hugeReaderAt uint64

func (h hugeReaderAt) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	if off == 0 && len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, uint64(h))
	}
	return len(p), nil
}

func TestReadSafetensorsBadHeaders(t *testing.T) {
	f32 := func(n int) []byte { return make([]byte, 4*n) }
	tests := []struct {
		name, want string
		file       []byte
	}{
		{"empty", "truncated: 0 bytes", nil},
		{"short", "truncated: 5 bytes", []byte{1, 0, 0, 0, 0}},
		{"header past end", "header length 100 exceeds the 2 bytes after it", append(binary.LittleEndian.AppendUint64(nil, 100), '{', '}')},
		{"not safetensors", "not a safetensors file: it does not start with a header length and a JSON header", []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01")},
		{"malformed JSON", "malformed JSON header", rawSafetensors(`{"a":{"dtype":"F32",`, nil)},
		{"not an object", "header is not a JSON object", rawSafetensors(`[1,2]`, nil)},
		{"trailing data", "trailing data", rawSafetensors(`{} {}`, nil)},
		{"duplicate", "tensor \"a\": listed twice", rawSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32(2))},
		{"unknown field", `tensor "a": malformed entry: unknown field "offsets"`, rawSafetensors(`{"a":{"dtype":"F32","shape":[1],"offsets":[0,4]}}`, f32(1))},
		{"field twice", `tensor "a": malformed entry: field "dtype" given twice`, rawSafetensors(`{"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}`, f32(1))},
		{"entry not an object", `tensor "a": malformed entry: want an object, not "[1]}" at byte 5`, rawSafetensors(`{"a":[1]}`, nil)},
		{"dtype not a string", `tensor "a": malformed entry: dtype must be a string, not "32,`, rawSafetensors(`{"a":{"dtype":32,"shape":[1],"data_offsets":[0,4]}}`, f32(1))},
		{"shape not an array", `tensor "a": malformed entry: shape must be an array of integers, not "4,`, rawSafetensors(`{"a":{"dtype":"F32","shape":4,"data_offsets":[0,16]}}`, f32(4))},
		{"shape null", `tensor "a": malformed entry: shape must be an array of integers, not "null`, rawSafetensors(`{"a":{"dtype":"F32","shape":null,"data_offsets":[0,4]}}`, f32(1))},
		{"nested shape", `tensor "a": malformed entry: shape must be an array of integers, not "[1]]`, rawSafetensors(`{"a":{"dtype":"F32","shape":[[1]],"data_offsets":[0,4]}}`, f32(1))},
		{"fractional dimension", `tensor "a": malformed entry: shape: "1.5" is not a 64-bit integer`, rawSafetensors(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, f32(1))},
		{"exponent dimension", `tensor "a": malformed entry: shape: "1e0" is not a 64-bit integer`, rawSafetensors(`{"a":{"dtype":"F32","shape":[1e0],"data_offsets":[0,4]}}`, f32(1))},
		{"plus sign", `tensor "a": malformed entry: shape: "+1" is not a 64-bit integer`, rawSafetensors(`{"a":{"dtype":"F32","shape":[+1],"data_offsets":[0,4]}}`, f32(1))},
		{"leading zero", `tensor "a": malformed entry: data_offsets: "04" is not a 64-bit integer`, rawSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,04]}}`, f32(1))},
		{"offset beyond int64", `tensor "a": malformed entry: data_offsets: "9223372036854775808" is not a 64-bit integer`, rawSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,9223372036854775808]}}`, f32(1))},
		{"three offsets", `tensor "a": data_offsets has more than 2 values: must be [begin, end] (the limit)`, rawSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, f32(2))},
		{"rank above the limit", fmt.Sprintf(`tensor "a": shape has more than %d dimensions (the limit)`, MaxSafetensorsRank),
			rawSafetensors(`{"a":{"dtype":"F32","shape":[`+strings.Repeat("1,", MaxSafetensorsRank)+`1],"data_offsets":[0,4]}}`, f32(1))},
		{"trailing comma", "malformed JSON header: want a string key, found", rawSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},}`, f32(1))},
		{"missing colon", "malformed JSON header: want ':', found", rawSafetensors(`{"a" {}}`, nil)},
		{"missing comma in an array", "malformed JSON header: want ',' or ']', found", rawSafetensors(`{"a":{"dtype":"F32","shape":[1 1],"data_offsets":[0,4]}}`, f32(1))},
		{"unterminated string", "malformed JSON header: unterminated string at byte 1", rawSafetensors(`{"a`, nil)},
		{"control character in a name", "malformed JSON header: string at byte 1: invalid character", rawSafetensors("{\"a\nb\":{}}", nil)},
		{"bad escape", "malformed JSON header: string at byte 1: invalid character 'x' in string escape code", rawSafetensors(`{"a\x":{}}`, nil)},
		{"empty header", "header is not a JSON object: the end of the header", rawSafetensors(``, nil)},
		{"unknown dtype", `tensor "a": unsupported dtype "I8"`, rawSafetensors(`{"a":{"dtype":"I8","shape":[4],"data_offsets":[0,4]}}`, f32(1))},
		{"F64 unsupported", `tensor "a": unsupported dtype "F64"`, rawSafetensors(`{"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}`, f32(2))},
		{"out of range", "tensor \"a\": data_offsets [0, 8) out of the data section [0, 4)", rawSafetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, f32(1))},
		{"negative offset", "tensor \"a\": data_offsets [-4, 0) out of", rawSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, f32(1))},
		{"reversed offsets", "tensor \"a\": data_offsets [4, 0) out of", rawSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}`, f32(1))},
		{"one offset", "tensor \"a\": data_offsets [0] must be [begin, end]", rawSafetensors(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, f32(1))},
		{"overlap", "tensor \"b\": bytes [4, 12) overlap tensor \"a\" [0, 8)", rawSafetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, f32(3))},
		{"size mismatch", "tensor \"a\": shape [3] of F32 does not fit data_offsets [0, 8) (8 bytes)", rawSafetensors(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, f32(2))},
		{"overflowing shape", "tensor \"a\": shape [4096 4096 4096 4096 4096 4096] of F32 does not fit", rawSafetensors(`{"a":{"dtype":"F32","shape":[4096,4096,4096,4096,4096,4096],"data_offsets":[0,4096]}}`, f32(1024))},
		{"dimension beyond file", "tensor \"a\": impossible dimension 9223372036854775807", rawSafetensors(`{"a":{"dtype":"F32","shape":[9223372036854775807,0],"data_offsets":[0,0]}}`, nil)},
		{"negative dimension", "tensor \"a\": impossible dimension -2", rawSafetensors(`{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,0]}}`, nil)},
		{"metadata not strings", `__metadata__ must map strings to strings: key "a" holds "1}}" at byte 21`, rawSafetensors(`{"__metadata__":{"a":1}}`, nil)},
		{"metadata nested", `__metadata__ must map strings to strings: key "a" holds "{\"b\":\"c\"}}}"`, rawSafetensors(`{"__metadata__":{"a":{"b":"c"}}}`, nil)},
		{"metadata not an object", `__metadata__ must map strings to strings, not "[]}"`, rawSafetensors(`{"__metadata__":[]}`, nil)},
		{"metadata twice", `tensor "__metadata__": listed twice`, rawSafetensors(`{"__metadata__":{},"__metadata__":{}}`, nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ReadSafetensors(bytes.NewReader(tt.file), int64(len(tt.file)))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), "\n")
		})
	}
	_, _, err := ReadSafetensors(hugeReaderAt(1<<30), 1<<40)
	assert.ErrorContains(t, err, "header length 1073741824 exceeds the limit 104857600")
}

// TestReadSafetensorsBounds: a header may name MaxSafetensorsTensors tensors
// and MaxSafetensorsMetadata metadata entries, not one more, and a header
// of tens of megabytes built to be expensive fails after a small, linear
// amount of work.
func TestReadSafetensorsBounds(t *testing.T) {
	// tensors is a header of n empty tensors, each of rank rank, and m metadata entries.
	header := func(n, rank, m int) string {
		var b strings.Builder
		b.WriteString(`{"__metadata__":{`)
		for i := range m {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"k%d":"v"`, i)
		}
		b.WriteByte('}')
		shape := strings.Repeat("1,", rank-1) + "0"
		for i := range n {
			fmt.Fprintf(&b, `,"t%d":{"dtype":"F32","shape":[%s],"data_offsets":[0,0]}`, i, shape)
		}
		b.WriteByte('}')
		return b.String()
	}
	// The data section is one byte: dimensions of 1 must fit in it.
	file := func(hdr string) []byte { return rawSafetensors(hdr, []byte{0}) }
	tests := []struct {
		name, want string
		file       []byte
	}{
		{"tensors at the limit", "", file(header(MaxSafetensorsTensors, 1, 0))},
		{"rank at the limit", "", file(header(1, MaxSafetensorsRank, 0))},
		{"metadata at the limit", "", file(header(0, 1, MaxSafetensorsMetadata))},
		{"one tensor too many", fmt.Sprintf("more than %d tensors (the limit)", MaxSafetensorsTensors), file(header(MaxSafetensorsTensors+1, 1, 0))},
		{"one metadata entry too many", fmt.Sprintf("__metadata__: more than %d entries (the limit)", MaxSafetensorsMetadata),
			file(header(0, 1, MaxSafetensorsMetadata+1))},
		// What took seconds and gigabytes before the bounds (at 90 MB).
		{"30 MB shape", fmt.Sprintf("shape has more than %d dimensions", MaxSafetensorsRank),
			file(`{"a":{"dtype":"F32","data_offsets":[0,0],"shape":[` + strings.Repeat("1,", 15<<20) + `0]}}`)},
		{"30 MB of tensors", "more than 65536 tensors", file(header(600_000, 1, 0))},
		{"30 MB of metadata", "__metadata__: more than 65536 entries", file(header(0, 1, 2_800_000))},
		{"every tensor of the highest rank", "", file(header(MaxSafetensorsTensors, MaxSafetensorsRank, 0))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			tensors, meta, err := ReadSafetensors(bytes.NewReader(tt.file), int64(len(tt.file)))
			runtime.ReadMemStats(&after)
			// The header is copied once, and the bounds keep what is built from it small whatever the header.
			allocated := after.TotalAlloc - before.TotalAlloc
			assert.Less(t, allocated, uint64(2*len(tt.file)+64<<20), "%d bytes allocated for a %d-byte file", allocated, len(tt.file))
			if tt.want != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.want)
				assert.Less(t, len(err.Error()), 200, "a short error")
				return
			}
			require.NoError(t, err)
			assert.LessOrEqual(t, len(tensors), MaxSafetensorsTensors)
			assert.LessOrEqual(t, len(meta), MaxSafetensorsMetadata)
		})
	}
}

// TestReadSafetensorsEmptyTensorAtTheEnd: an empty tensor may sit at the
// end of the file, with no data after the header at all.
func TestReadSafetensorsEmptyTensorAtTheEnd(t *testing.T) {
	file := rawSafetensors(`{"e":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}`, nil)
	tensors, _, err := ReadSafetensors(bytes.NewReader(file), int64(len(file)))
	require.NoError(t, err)
	require.Len(t, tensors, 1)
	assert.Equal(t, []int{0}, tensors[0].Shape)
	assert.Empty(t, tensors[0].Data)
}

// TestReadSafetensorsStringsAreJSON: names and metadata mean what JSON says,
// escapes included, as encoding/json decodes them; JSON text is UTF-8, so a
// string that is not is refused.
func TestReadSafetensorsStringsAreJSON(t *testing.T) {
	bad := rawSafetensors("{\"bad\xffutf8\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", make([]byte, 4))
	_, _, err := ReadSafetensors(bytes.NewReader(bad), int64(len(bad)))
	require.ErrorContains(t, err, "malformed JSON header: string at byte 1 is not UTF-8")
	for _, name := range []string{`plain`, `caf\u00e9`, `tab\there`, `quote\"and\\slash`, `\ud83d\ude00`, `ünïcödé`} {
		t.Run(name, func(t *testing.T) {
			var want string
			require.NoError(t, json.Unmarshal([]byte(`"`+name+`"`), &want))
			file := rawSafetensors(`{"__metadata__":{"`+name+`":"`+name+`"},"`+name+`":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4))
			tensors, meta, err := ReadSafetensors(bytes.NewReader(file), int64(len(file)))
			require.NoError(t, err)
			require.Len(t, tensors, 1)
			assert.Equal(t, want, tensors[0].Name)
			assert.Equal(t, map[string]string{want: want}, meta)
		})
	}
}

func TestLoadWeightsBadFiles(t *testing.T) {
	cfg := mustPreset(t, "mnist-tiny")
	dir := t.TempDir()
	good := filepath.Join(dir, "good.safetensors")
	require.NoError(t, SaveWeights(good, RandomWeights(cfg, 1), LayoutTimm, nil))
	goodBytes, err := os.ReadFile(good)
	require.NoError(t, err)
	tensors, _, err := ReadSafetensors(bytes.NewReader(goodBytes), int64(len(goodBytes)))
	require.NoError(t, err)
	// rewrite writes the good file's tensors after edit.
	rewrite := func(edit func(ts []Tensor) []Tensor) []byte {
		ts := make([]Tensor, len(tensors))
		for i, t := range tensors {
			ts[i] = Tensor{t.Name, t.Shape, append([]float32{}, t.Data...)}
		}
		var buf bytes.Buffer
		require.NoError(t, WriteSafetensors(&buf, edit(ts), nil))
		return buf.Bytes()
	}
	index := func(ts []Tensor, name string) int {
		for i, t := range ts {
			if t.Name == name {
				return i
			}
		}
		panic(name)
	}
	deitTiny := mustPreset(t, "deit-tiny")
	tests := []struct {
		name, want string
		cfg        Config
		file       []byte
	}{
		{"truncated", "header length", cfg, goodBytes[:4]},
		{"truncated data", "tensor \"head.bias\": data_offsets", cfg, goodBytes[:len(goodBytes)-10]},
		{"missing tensor", "tensor \"blocks.3.mlp.fc2.weight\": missing (timm layout, model mnist-tiny)", cfg, rewrite(func(ts []Tensor) []Tensor {
			i := index(ts, "blocks.3.mlp.fc2.weight")
			return append(ts[:i], ts[i+1:]...)
		})},
		{"shape disagrees with config", "tensor \"cls_token\": shape [1 1 64], model deit-tiny needs [1 1 192]", deitTiny, goodBytes},
		{"transposed", "tensor \"blocks.0.mlp.fc1.weight\": shape [64 256], model mnist-tiny needs [256 64]", cfg, rewrite(func(ts []Tensor) []Tensor {
			ts[index(ts, "blocks.0.mlp.fc1.weight")].Shape = []int{64, 256}
			return ts
		})},
		{"NaN", "tensor \"blocks.1.attn.qkv.weight\": NaN at index 17", cfg, rewrite(func(ts []Tensor) []Tensor {
			ts[index(ts, "blocks.1.attn.qkv.weight")].Data[17] = float32(math.NaN())
			return ts
		})},
		{"Inf", "tensor \"norm.bias\": infinity at index 0", cfg, rewrite(func(ts []Tensor) []Tensor {
			ts[index(ts, "norm.bias")].Data[0] = float32(math.Inf(-1))
			return ts
		})},
		{"unknown layout", "neither timm (patch_embed.proj.weight) nor Hugging Face DeiT", cfg, rewrite(func(ts []Tensor) []Tensor { return ts[5:] })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".safetensors")
			require.NoError(t, os.WriteFile(path, tt.file, 0o644))
			_, _, err := LoadWeights(path, tt.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), path)
			assert.NotContains(t, err.Error(), "\n")
		})
	}
	_, _, err = LoadWeights(filepath.Join(dir, "absent.safetensors"), cfg)
	assert.ErrorIs(t, err, os.ErrNotExist)

	// A NaN in a tensor the model does not use (timm's distillation head) is ignored.
	path := filepath.Join(dir, "extra.safetensors")
	require.NoError(t, os.WriteFile(path, rewrite(func(ts []Tensor) []Tensor {
		return append(ts, Tensor{"head_dist.bias", []int{1}, []float32{float32(math.NaN())}})
	}), 0o644))
	_, _, err = LoadWeights(path, cfg)
	assert.NoError(t, err)
}

// TestLoadWeightsOfAnotherModel: a file of another preset says which one it
// holds (ModelMismatchError.Looks), so that a command can say what to ask for.
func TestLoadWeightsOfAnotherModel(t *testing.T) {
	dir := t.TempDir()
	save := func(model string, layout Layout) string {
		path := filepath.Join(dir, model+"-"+layout.String()+".safetensors")
		require.NoError(t, SaveWeights(path, RandomWeights(mustPreset(t, model), 1), layout, nil))
		return path
	}
	tests := []struct {
		name, file, model, looks, want string
	}{
		{"DeiT-Tiny read as mnist-tiny", save("deit-tiny", LayoutTimm), "mnist-tiny", "deit-tiny",
			`tensor "cls_token": shape [1 1 192], model mnist-tiny needs [1 1 64]: the file holds a deit-tiny, not a mnist-tiny`},
		{"Hugging Face DeiT-Tiny read as deit-small", save("deit-tiny", LayoutHF), "deit-small", "deit-tiny",
			"the file holds a deit-tiny, not a deit-small"},
		{"mnist-tiny read as deit-tiny", save("mnist-tiny", LayoutTimm), "deit-tiny", "mnist-tiny",
			`tensor "cls_token": shape [1 1 64], model deit-tiny needs [1 1 192]: the file holds a mnist-tiny, not a deit-tiny`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := LoadWeights(tt.file, mustPreset(t, tt.model))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			var mm *ModelMismatchError
			require.ErrorAs(t, err, &mm)
			assert.Equal(t, tt.looks, mm.Looks)
			assert.Equal(t, tt.model, mm.Model)
		})
	}

	// A file of no preset's shape (10 classes on DeiT-Tiny) names none.
	cfg := mustPreset(t, "deit-tiny")
	cfg.NumClasses = 10
	odd := filepath.Join(dir, "odd.safetensors")
	require.NoError(t, SaveWeights(odd, RandomWeights(cfg, 1), LayoutTimm, nil))
	_, _, err := LoadWeights(odd, mustPreset(t, "deit-tiny"))
	var mm *ModelMismatchError
	require.ErrorAs(t, err, &mm)
	assert.Empty(t, mm.Looks)
	assert.NotContains(t, err.Error(), "the file holds")
}

func TestSaveWeightsLeavesNoPartialFile(t *testing.T) {
	cfg := mustPreset(t, "mnist-tiny")
	dir := t.TempDir()
	path := filepath.Join(dir, "w.safetensors")
	w := RandomWeights(cfg, 1)
	require.NoError(t, SaveWeights(path, w, LayoutHF, nil))
	before, err := os.ReadFile(path)
	require.NoError(t, err)

	w.Layers[0].QB[0] = float32(math.NaN())
	err = SaveWeights(path, w, LayoutTimm, nil)
	assert.ErrorContains(t, err, "tensor layers.0.q.bias: NaN")
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, before, after, "the previous checkpoint is untouched")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left behind")

	assert.Error(t, SaveWeights(filepath.Join(dir, "missing", "w.safetensors"), RandomWeights(cfg, 1), LayoutTimm, nil))
}

func TestPruningMetadata(t *testing.T) {
	cfg := mustPreset(t, "mnist-tiny")
	p := randomPruning(cfg, 16, 0.7, []int{1, 3}, 4)
	p.Layers[2].Q = nil // a nil mask survives as nil
	s, err := EncodePruning(p)
	require.NoError(t, err)
	got, err := DecodePruning(s, cfg)
	require.NoError(t, err)
	assert.Equal(t, p, got)

	// Through a checkpoint's metadata.
	path := filepath.Join(t.TempDir(), "pruned.safetensors")
	require.NoError(t, SaveWeights(path, RandomWeights(cfg, 1), LayoutTimm, map[string]string{PruningMetadataKey: s}))
	_, meta, err := LoadWeights(path, cfg)
	require.NoError(t, err)
	got, err = DecodePruning(meta[PruningMetadataKey], cfg)
	require.NoError(t, err)
	assert.Equal(t, p, got)

	for _, tt := range []struct{ name, in, want string }{
		{"not JSON", "{", "decode pruning: unexpected EOF"},
		{"unknown field", `{"keep":1,"blocks":16}`, `unknown field "blocks"`},
		{"bad keep", `{"keep":0}`, "decode pruning: keep rate 0 not in (0, 1]"},
		{"bad character", `{"block":16,"keep":1,"layers":[{"q":"01x"}]}`, `decode pruning: layer 0: q mask: character 'x' at 2 is not 0 or 1`},
		{"wrong layer count", `{"block":16,"keep":1,"layers":[{"q":"0101"}]}`, "decode pruning: 1 layer masks for 4 layers"},
		{"wrong mask length", `{"block":16,"keep":1,"layers":[{"q":"0101"},{},{},{}]}`, "layer 0: Q mask has 4 blocks, want 4×4"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodePruning(tt.in, cfg)
			assert.ErrorContains(t, err, tt.want)
		})
	}
	_, err = EncodePruning(nil)
	assert.Error(t, err)
}

func TestParseLayout(t *testing.T) {
	for in, want := range map[string]Layout{"timm": LayoutTimm, "HF": LayoutHF, "huggingface": LayoutHF} {
		got, err := ParseLayout(in)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := ParseLayout("onnx")
	assert.ErrorContains(t, err, `unknown weights layout "onnx"`)
}

func FuzzReadSafetensors(f *testing.F) {
	f.Add(rawSafetensors(`{"__metadata__":{"k":"v"},"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[1,1],"data_offsets":[4,6]}}`, []byte{0, 60, 0, 192, 128, 63}))
	f.Add(rawSafetensors(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 12)))
	f.Fuzz(func(t *testing.T, data []byte) {
		tensors, meta, err := ReadSafetensors(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			require.NotContains(t, err.Error(), "\n")
			return
		}
		total := 0
		for _, ts := range tensors {
			n := 1
			for _, d := range ts.Shape {
				n *= d
			}
			require.Len(t, ts.Data, n, ts.Name)
			total += n
		}
		require.LessOrEqual(t, total, len(data), "tensors cannot hold more values than the file has bytes")
		// The header is JSON, and means to encoding/json what it meant to the scanner.
		hdr := data[8 : 8+binary.LittleEndian.Uint64(data)]
		require.True(t, json.Valid(hdr), "a header that parses is JSON")
		var top map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(hdr, &top))
		names := len(tensors)
		if m, ok := top["__metadata__"]; ok {
			var want map[string]string
			require.NoError(t, json.Unmarshal(m, &want))
			require.Equal(t, want, meta)
			names++
		}
		require.Len(t, top, names)
		for _, ts := range tensors {
			require.Contains(t, top, ts.Name)
		}
		// What was read writes back (as F32) and reads back to the same bits.
		var buf bytes.Buffer
		require.NoError(t, WriteSafetensors(&buf, tensors, meta))
		again, meta2, err := ReadSafetensors(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		require.NoError(t, err)
		require.Len(t, again, len(tensors))
		require.Equal(t, len(meta), len(meta2))
		for i := range tensors {
			require.Equal(t, tensors[i].Name, again[i].Name)
			require.Len(t, again[i].Data, len(tensors[i].Data))
			for j, v := range tensors[i].Data {
				require.Equal(t, math.Float32bits(v), math.Float32bits(again[i].Data[j]))
			}
		}
	})
}

// TestEmptyTensorWithWideDimension: a tensor with a zero dimension holds no
// bytes whatever its other dimensions, and what WriteSafetensors writes
// reads back (the fuzzer found the reader refusing [0 5] beside 4 bytes).
func TestEmptyTensorWithWideDimension(t *testing.T) {
	var buf bytes.Buffer
	in := []Tensor{{Name: "e", Shape: []int{0, 5}, Data: nil}, {Name: "x", Shape: []int{1}, Data: []float32{2}}}
	require.NoError(t, WriteSafetensors(&buf, in, nil))
	got, _, err := ReadSafetensors(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, []int{0, 5}, got[0].Shape)
	assert.Empty(t, got[0].Data)
	assert.Equal(t, []float32{2}, got[1].Data)
}
