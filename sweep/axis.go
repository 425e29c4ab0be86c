package sweep

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Pruning keys an axis may set besides the topology's keys.
const (
	KeyBlock   = "block"   // the block side b of the static pruning
	KeyDensity = "density" // the kept fraction of blocks and neurons, by magnitude
	KeyKeep    = "keep"    // the token keep rate
	KeyTD      = "td"      // the token-dropping layers, as 2/6/9 or none
)

var pruningKeys = []string{KeyBlock, KeyDensity, KeyKeep, KeyTD}

// maxAxisValues bounds one axis, so that a range such as 0:1e12:1 is
// refused before it is expanded.
const maxAxisValues = 10000

// Axis is one swept setting: a key and the values it takes, as text.
type Axis struct {
	Key    string
	Values []string
}

// ParseAxis parses KEY=V1,V2,... or a numeric range KEY=LO:HI:STEP
// (inclusive of HI when the steps reach it), e.g. "mpca.h=2,4,8" or
// "density=0.25:1:0.25". Whether the key exists and its values fit it is
// checked when the sweep is planned.
func ParseAxis(s string) (Axis, error) {
	key, list, ok := strings.Cut(s, "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		return Axis{}, fmt.Errorf("%q: want KEY=V1,V2,... or KEY=LO:HI:STEP", s)
	}
	if i := strings.IndexFunc(key, func(r rune) bool { return !isKeyRune(r) }); i >= 0 {
		return Axis{}, fmt.Errorf("key %q: keys are letters, digits and . _ - > (as mpca.h or fifo.depths.mpca->gelu)", key)
	}
	if strings.ContainsFunc(list, unicode.IsControl) {
		return Axis{}, fmt.Errorf("%s: values %q hold a control character", key, list)
	}
	a := Axis{Key: key}
	for v := range strings.SplitSeq(list, ",") {
		v = strings.TrimSpace(v)
		if v == "" {
			return Axis{}, fmt.Errorf("%s: empty value in %q", key, list)
		}
		if strings.Count(v, ":") == 2 {
			r, err := expandRange(key, v)
			if err != nil {
				return Axis{}, err
			}
			a.Values = append(a.Values, r...)
			continue
		}
		a.Values = append(a.Values, v)
	}
	if len(a.Values) > maxAxisValues {
		return Axis{}, fmt.Errorf("%s: %d values, more than %d", key, len(a.Values), maxAxisValues)
	}
	for i, v := range a.Values {
		if slices.Contains(a.Values[:i], v) {
			return Axis{}, fmt.Errorf("%s: value %s listed twice", key, v)
		}
	}
	return a, nil
}

// isKeyRune reports whether r may be part of a key.
func isKeyRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._->", r)
}

// expandRange expands LO:HI:STEP into its values, printed as integers when
// all three are integers.
func expandRange(key, r string) ([]string, error) {
	parts := strings.Split(r, ":")
	var x [3]float64
	for i, p := range parts {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, fmt.Errorf("%s: range %q: %q is not a number", key, r, p)
		}
		x[i] = v
	}
	lo, hi, step := x[0], x[1], x[2]
	if step <= 0 || hi < lo {
		return nil, fmt.Errorf("%s: range %q is empty: want LO <= HI and STEP > 0", key, r)
	}
	n := math.Floor((hi-lo)/step*(1+1e-12)) + 1 // a last step that lands on hi within rounding counts
	if n > maxAxisValues {
		return nil, fmt.Errorf("%s: range %q has %.0f values, more than %d", key, r, n, maxAxisValues)
	}
	if math.Abs(lo) > 1<<53 || math.Abs(hi) > 1<<53 {
		return nil, fmt.Errorf("%s: range %q: its ends must be within ±2^53", key, r)
	}
	integer := lo == math.Trunc(lo) && step == math.Trunc(step)
	out := make([]string, int(n))
	for i := range out {
		v := lo + float64(i)*step
		if integer {
			out[i] = strconv.FormatInt(int64(v), 10)
		} else {
			// Twelve digits drop the binary noise of lo + i*step (0.30000000000000004).
			out[i] = strconv.FormatFloat(v, 'g', 12, 64)
		}
	}
	return out, nil
}
