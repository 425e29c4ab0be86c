package vit

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Bounds on a safetensors header besides its length (MaxSafetensorsHeader),
// checked while it is scanned, before what exceeds them is stored: a header
// names at most MaxSafetensorsTensors tensors of rank at most
// MaxSafetensorsRank, and holds at most MaxSafetensorsMetadata metadata
// entries. Parsing is one pass over the header, so its time and memory are
// linear in the header's length. DeiT-B has 152 tensors of rank at most 4.
const (
	MaxSafetensorsTensors  = 1 << 16
	MaxSafetensorsRank     = 64 // NumPy's limit
	MaxSafetensorsMetadata = 1 << 16
)

// minEntryBytes is the length of the shortest entry of a valid header,
// `"":{"dtype":"F32","data_offsets":[0,0]},` less one byte.
const minEntryBytes = 38

// parseSafetensorsHeader parses the JSON header, keeping the order of the
// entries and rejecting duplicate names, for a data section of dataLen bytes.
func parseSafetensorsHeader(hdr []byte, dataLen int64) ([]tensorEntry, map[string]string, error) {
	s := &headerScanner{b: hdr}
	if s.skipSpace() != '{' {
		return nil, nil, fmt.Errorf("header is not a JSON object: %s", s.found())
	}
	// An entry takes at least minEntryBytes of the header: room for every
	// entry the header can hold, so that appending never copies.
	n := min(len(hdr)/minEntryBytes+1, MaxSafetensorsTensors)
	entries := make([]tensorEntry, 0, n)
	seen := make(map[string]bool, n)
	var meta map[string]string
	err := s.object(func(name string) error {
		if seen[name] {
			return fmt.Errorf("tensor %q: listed twice", name)
		}
		seen[name] = true
		if name == "__metadata__" {
			var err error
			meta, err = s.metadata()
			return err
		}
		if len(entries) == MaxSafetensorsTensors {
			return fmt.Errorf("more than %d tensors (the limit)", MaxSafetensorsTensors)
		}
		raw, err := s.entry()
		if err != nil {
			return fmt.Errorf("tensor %q: %w", name, err)
		}
		e, err := checkEntry(name, raw.dtype, raw.shape, raw.offsets, dataLen)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", name, err)
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if s.skipSpace(); s.i < len(s.b) { // skipSpace's 0 is also a NUL byte
		return nil, nil, fmt.Errorf("malformed JSON header: trailing data: %s", s.found())
	}
	byOffset := slices.Clone(entries)
	slices.SortStableFunc(byOffset, func(a, b tensorEntry) int { return cmp.Compare(a.begin, b.begin) })
	var last *tensorEntry // the non-empty range ending furthest so far
	for i := range byOffset {
		e := &byOffset[i]
		if e.end == e.begin {
			continue
		}
		if last != nil && e.begin < last.end {
			return nil, nil, fmt.Errorf("tensor %q: bytes [%d, %d) overlap tensor %q [%d, %d)", e.name, e.begin, e.end, last.name, last.begin, last.end)
		}
		last = e
	}
	return entries, meta, nil
}

// rawEntry is a tensor's entry as written in the header.
type rawEntry struct {
	dtype          string
	shape, offsets []int64
}

// entry scans a tensor's entry: an object with the fields dtype, shape (at
// most MaxSafetensorsRank integers) and data_offsets (two), each at most
// once. A missing field is left empty for checkEntry to reject.
func (s *headerScanner) entry() (rawEntry, error) {
	var e rawEntry
	if s.skipSpace() != '{' {
		return e, fmt.Errorf("malformed entry: want an object, not %s", s.found())
	}
	var seen struct{ dtype, shape, offsets bool }
	err := s.object(func(field string) error {
		var err error
		var twice bool
		switch field {
		case "dtype":
			twice, seen.dtype = seen.dtype, true
			if s.skipSpace() != '"' {
				return fmt.Errorf("malformed entry: dtype must be a string, not %s", s.found())
			}
			e.dtype, err = s.str()
		case "shape":
			twice, seen.shape = seen.shape, true
			e.shape, err = s.ints(&s.shape, "shape", MaxSafetensorsRank, "dimensions")
		case "data_offsets":
			twice, seen.offsets = seen.offsets, true
			e.offsets, err = s.ints(&s.offsets, "data_offsets", 2, "values: must be [begin, end]")
		default: // the format has no other fields
			err = fmt.Errorf("malformed entry: unknown field %q", field)
		}
		if twice {
			return fmt.Errorf("malformed entry: field %q given twice", field)
		}
		return err
	})
	return e, err
}

// metadata scans the value of __metadata__: an object of at most
// MaxSafetensorsMetadata strings (a repeated key keeps its last value).
func (s *headerScanner) metadata() (map[string]string, error) {
	const notStrings = "__metadata__ must map strings to strings"
	if s.skipSpace() != '{' {
		return nil, fmt.Errorf("%s, not %s", notStrings, s.found())
	}
	meta := map[string]string{}
	err := s.object(func(key string) error {
		if s.skipSpace() != '"' {
			return fmt.Errorf("%s: key %q holds %s", notStrings, key, s.found())
		}
		v, err := s.str()
		if err != nil {
			return err
		}
		if _, dup := meta[key]; !dup && len(meta) == MaxSafetensorsMetadata {
			return fmt.Errorf("__metadata__: more than %d entries (the limit)", MaxSafetensorsMetadata)
		}
		meta[key] = v
		return nil
	})
	return meta, err
}

// headerScanner reads the JSON of a safetensors header in one pass. It
// knows only what the format uses: objects with string keys, strings, and
// arrays of integers; anything else where a value is expected is an error.
type headerScanner struct {
	b []byte
	i int // the next byte to read
	// shape and offsets hold the integers of the entry being scanned.
	shape, offsets []int64
}

// skipSpace skips JSON whitespace and returns the next byte, 0 at the end.
func (s *headerScanner) skipSpace() byte {
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; c {
		case ' ', '\t', '\n', '\r':
		default:
			return c
		}
	}
	return 0
}

// found describes what is at the scan position, for an error.
func (s *headerScanner) found() string {
	if s.skipSpace() == 0 {
		return "the end of the header"
	}
	rest := s.b[s.i:]
	if len(rest) > 20 {
		rest = append(rest[:20:20], "..."...)
	}
	return fmt.Sprintf("%q at byte %d", rest, s.i)
}

// syntax is the error for malformed JSON at the scan position.
func (s *headerScanner) syntax(want string) error {
	return fmt.Errorf("malformed JSON header: want %s, found %s", want, s.found())
}

// object scans an object, at '{', calling member with each key when the
// scan position is at its value; member must scan the value.
func (s *headerScanner) object(member func(key string) error) error {
	s.i++ // '{'
	if s.skipSpace() == '}' {
		s.i++
		return nil
	}
	for {
		if s.skipSpace() != '"' {
			return s.syntax("a string key")
		}
		key, err := s.str()
		if err != nil {
			return err
		}
		if s.skipSpace() != ':' {
			return s.syntax("':'")
		}
		s.i++
		if err := member(key); err != nil {
			return err
		}
		switch s.skipSpace() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.syntax("',' or '}'")
		}
	}
}

// str scans a string, at '"'. JSON text is UTF-8, so a string that is not
// is an error (encoding/json would quietly replace the bytes); a plain
// string is used as it is; one with escapes or control characters is left
// to encoding/json, so that strings mean exactly what JSON says.
func (s *headerScanner) str() (string, error) {
	start := s.i
	plain := true
	for s.i++; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			raw := s.b[start:s.i]
			if !utf8.Valid(raw) {
				s.i = start
				return "", fmt.Errorf("malformed JSON header: string at byte %d is not UTF-8", start)
			}
			if plain {
				return string(raw[1 : len(raw)-1]), nil
			}
			var v string
			if err := json.Unmarshal(raw, &v); err != nil {
				s.i = start
				return "", fmt.Errorf("malformed JSON header: string at byte %d: %w", start, err)
			}
			return v, nil
		case c == '\\':
			plain = false
			s.i++ // whatever follows is not the closing quote
		case c < 0x20:
			plain = false
		}
	}
	s.i = start
	return "", errors.New("malformed JSON header: unterminated string at byte " + strconv.Itoa(start))
}

// ints scans the value of field: an array of at most limit integers, which
// are called units in the error that says there are more. It returns them in
// *buf, reused from one entry to the next.
func (s *headerScanner) ints(buf *[]int64, field string, limit int, units string) ([]int64, error) {
	if s.skipSpace() != '[' {
		return nil, fmt.Errorf("malformed entry: %s must be an array of integers, not %s", field, s.found())
	}
	s.i++
	out := (*buf)[:0]
	defer func() { *buf = out }()
	if s.skipSpace() == ']' {
		s.i++
		return out, nil
	}
	for {
		if len(out) == limit {
			return nil, fmt.Errorf("%s has more than %d %s (the limit)", field, limit, units)
		}
		v, err := s.int(field)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		switch s.skipSpace() {
		case ',':
			s.i++
		case ']':
			s.i++
			return out, nil
		default:
			return nil, s.syntax("',' or ']'")
		}
	}
}

// int scans an integer that fits in int64, in JSON's syntax (no '+', no
// leading zeros).
func (s *headerScanner) int(field string) (int64, error) {
	s.skipSpace()
	start := s.i
	for ; s.i < len(s.b); s.i++ {
		c := s.b[s.i]
		if !('0' <= c && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
			break
		}
	}
	lit := string(s.b[start:s.i])
	if lit == "" {
		return 0, fmt.Errorf("malformed entry: %s must be an array of integers, not %s", field, s.found())
	}
	digits := lit
	if digits[0] == '-' {
		digits = digits[1:]
	}
	v, err := strconv.ParseInt(lit, 10, 64)
	if err != nil || digits == "" || digits[0] < '0' || digits[0] > '9' || len(digits) > 1 && digits[0] == '0' {
		s.i = start
		return 0, fmt.Errorf("malformed entry: %s: %q is not a 64-bit integer", field, lit)
	}
	return v, nil
}
