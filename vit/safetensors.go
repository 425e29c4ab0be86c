package vit

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// MaxSafetensorsHeader bounds the JSON header of a safetensors file (the
// reference implementation's limit too); MaxSafetensorsTensors,
// MaxSafetensorsRank and MaxSafetensorsMetadata bound what it may hold.
const MaxSafetensorsHeader = 100 << 20

// Tensor is a named float32 tensor of a safetensors file.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

var dtypeSize = map[string]int64{"F32": 4, "F16": 2, "BF16": 2}

type tensorEntry struct {
	name        string
	dtype       string
	shape       []int
	begin, end  int64 // byte range within the data section
	elementSize int64
}

// ReadSafetensors reads every tensor of the safetensors file r of size bytes
// (F32, F16 and BF16, converted to float32) and its __metadata__. The header
// is validated before any tensor is read: lengths, dtypes, shapes and byte
// ranges must agree, ranges must lie inside the file and must not overlap, so
// a malformed file fails with an error naming the tensor and allocates no
// more than its own size (twice that for 16-bit data). The header is parsed
// in one pass within the bounds above: a hostile header of 100 MB fails in
// a fraction of a second, having allocated little more than its own size.
func ReadSafetensors(r io.ReaderAt, size int64) ([]Tensor, map[string]string, error) {
	entries, meta, dataStart, err := readSafetensorsHeader(r, size)
	if err != nil {
		return nil, nil, err
	}
	tensors := make([]Tensor, 0, len(entries))
	for _, e := range entries {
		raw := make([]byte, e.end-e.begin)
		// An empty tensor reads nothing: at the end of the file ReadAt would say EOF.
		if _, err := r.ReadAt(raw, dataStart+e.begin); err != nil && len(raw) > 0 {
			return nil, nil, fmt.Errorf("tensor %q: %w", e.name, err)
		}
		tensors = append(tensors, Tensor{Name: e.name, Shape: e.shape, Data: decodeFloats(raw, e.dtype)})
	}
	return tensors, meta, nil
}

func readSafetensorsHeader(r io.ReaderAt, size int64) ([]tensorEntry, map[string]string, int64, error) {
	var lenBuf [8]byte
	if size < 8 {
		return nil, nil, 0, fmt.Errorf("truncated: %d bytes, too short for the header length", size)
	}
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, nil, 0, fmt.Errorf("header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > uint64(size-8) {
		// A safetensors header is a JSON object: a file whose ninth byte is
		// not '{' is something else (an image, a PyTorch checkpoint).
		var first [1]byte
		if size > 8 {
			if _, err := r.ReadAt(first[:], 8); err == nil && first[0] != '{' {
				return nil, nil, 0, errors.New("not a safetensors file: it does not start with a header length and a JSON header")
			}
		}
		return nil, nil, 0, fmt.Errorf("header length %d exceeds the %d bytes after it (truncated file?)", n, size-8)
	}
	if n > MaxSafetensorsHeader {
		return nil, nil, 0, fmt.Errorf("header length %d exceeds the limit %d", n, MaxSafetensorsHeader)
	}
	hdr := make([]byte, n)
	if _, err := r.ReadAt(hdr, 8); err != nil && n > 0 {
		return nil, nil, 0, fmt.Errorf("header: %w", err)
	}
	dataStart := 8 + int64(n)
	entries, meta, err := parseSafetensorsHeader(hdr, size-dataStart)
	return entries, meta, dataStart, err
}

func checkEntry(name, dtype string, shape, offsets []int64, dataLen int64) (tensorEntry, error) {
	e := tensorEntry{name: name, dtype: dtype}
	es, ok := dtypeSize[dtype]
	if !ok {
		return e, fmt.Errorf("unsupported dtype %q (F32, F16 or BF16)", dtype)
	}
	if len(offsets) != 2 {
		return e, fmt.Errorf("data_offsets %v must be [begin, end]", offsets)
	}
	e.begin, e.end, e.elementSize = offsets[0], offsets[1], es
	if e.begin < 0 || e.end < e.begin || e.end > dataLen {
		return e, fmt.Errorf("data_offsets [%d, %d) out of the data section [0, %d)", e.begin, e.end, dataLen)
	}
	if len(shape) > 0 {
		e.shape = make([]int, len(shape)) // shape may be a scanner's buffer
	}
	// A dimension cannot exceed the bytes there are, unless another is 0
	// and the tensor holds nothing (which WriteSafetensors writes).
	maxDim := dataLen
	if slices.Contains(shape, 0) {
		maxDim = math.MaxInt32
	}
	for i, d := range shape {
		if d < 0 || d > maxDim {
			return e, fmt.Errorf("impossible dimension %d in shape %v", d, shape)
		}
		e.shape[i] = int(d)
	}
	have := e.end - e.begin
	need := es
	if slices.Contains(shape, 0) {
		need = 0
	}
	for _, d := range shape {
		if d > 0 && need > have/d {
			need = have + 1 // more than the range holds; stop before the product overflows
			break
		}
		need *= d
	}
	if need != have {
		return e, fmt.Errorf("shape %v of %s does not fit data_offsets [%d, %d) (%d bytes)", shape, dtype, e.begin, e.end, have)
	}
	return e, nil
}

func decodeFloats(raw []byte, dtype string) []float32 {
	switch dtype {
	case "F32":
		out := make([]float32, len(raw)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return out
	case "BF16":
		out := make([]float32, len(raw)/2)
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(raw[2*i:])) << 16)
		}
		return out
	default: // F16
		out := make([]float32, len(raw)/2)
		for i := range out {
			out[i] = halfToFloat(binary.LittleEndian.Uint16(raw[2*i:]))
		}
		return out
	}
}

// halfToFloat converts an IEEE 754 binary16 value exactly.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // infinity or NaN
		return math.Float32frombits(sign | 0xff<<23 | frac<<13)
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: frac·2^-24
		v := float32(frac) / (1 << 24)
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
}

// WriteSafetensors writes tensors (as F32, in the given order) and meta in
// the safetensors format. The header is padded with spaces to a multiple of 8
// bytes so that the data is aligned.
func WriteSafetensors(w io.Writer, tensors []Tensor, meta map[string]string) error {
	var hdr strings.Builder
	hdr.WriteByte('{')
	if len(meta) > 0 {
		m, err := json.Marshal(meta)
		if err != nil {
			return err
		}
		fmt.Fprintf(&hdr, `"__metadata__":%s`, m)
	}
	seen := map[string]bool{"__metadata__": true}
	var offset int64
	for _, t := range tensors {
		if seen[t.Name] {
			return fmt.Errorf("tensor %q: name used twice", t.Name)
		}
		seen[t.Name] = true
		n := 1
		for _, d := range t.Shape {
			n *= d
		}
		if n != len(t.Data) {
			return fmt.Errorf("tensor %q: shape %v needs %d values, have %d", t.Name, t.Shape, n, len(t.Data))
		}
		if hdr.Len() > 1 {
			hdr.WriteByte(',')
		}
		name, _ := json.Marshal(t.Name)
		shape, _ := json.Marshal(append([]int{}, t.Shape...))
		end := offset + 4*int64(n)
		fmt.Fprintf(&hdr, `%s:{"dtype":"F32","shape":%s,"data_offsets":[%d,%d]}`, name, shape, offset, end)
		offset = end
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	if err := binary.Write(bw, binary.LittleEndian, uint64(hdr.Len())); err != nil {
		return err
	}
	if _, err := bw.WriteString(hdr.String()); err != nil {
		return err
	}
	buf := make([]byte, 0, 1<<16)
	for _, t := range tensors {
		for _, v := range t.Data {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
			if len(buf) == cap(buf) {
				if _, err := bw.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
	}
	if _, err := bw.Write(buf); err != nil {
		return err
	}
	return bw.Flush()
}

var errNoLayout = errors.New("neither timm (patch_embed.proj.weight) nor Hugging Face DeiT (deit.embeddings.*) tensors")
