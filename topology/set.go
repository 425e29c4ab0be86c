package topology

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Keys lists every key Set accepts for a machine of h CHMs, in the order of
// the description's fields: the TOML keys of a description file (but name),
// then one fifo.depths.LINK per sizable link.
func Keys(h int) []string {
	var keys []string
	for _, k := range requiredKeys() {
		keys = append(keys, strings.Join(k, "."))
	}
	for _, link := range LinkNames(h) {
		keys = append(keys, depthsKey+link)
	}
	return keys
}

// depthsKey prefixes a key that sets one link's depth, as in
// fifo.depths.mpca->gelu.
const depthsKey = "fifo.depths."

// Set sets the field whose TOML key is key ("mpca.h", "memory.channels",
// "balance", "fifo.depths.mpca->gelu") from its text, as a sweep or a
// command line gives it. It checks the value's type only: call Validate once
// every field is set, since the ranges of some fields depend on others.
func (d *Description) Set(key, value string) error {
	if link, ok := strings.CutPrefix(key, depthsKey); ok {
		n, err := strconv.Atoi(value)
		if err != nil {
			return fmt.Errorf("%s: %q is not an integer", key, value)
		}
		if d.FIFO.Depths == nil {
			d.FIFO.Depths = map[string]int{}
		}
		d.FIFO.Depths[link] = n // Validate names an unknown link
		return nil
	}
	f, ok := settable(d, key)
	if !ok {
		return fmt.Errorf("unknown topology key %q (have %s)", shorten(key), strings.Join(Keys(d.MPCA.H), ", "))
	}
	switch f.Kind() {
	case reflect.Int:
		n, err := strconv.Atoi(value)
		if err != nil {
			return fmt.Errorf("%s: %q is not an integer", key, value)
		}
		f.SetInt(int64(n))
	case reflect.Float64:
		x, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return fmt.Errorf("%s: %q is not a number", key, value)
		}
		f.SetFloat(x)
	case reflect.Bool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("%s: %q is not true or false", key, value)
		}
		f.SetBool(b)
	case reflect.String:
		f.SetString(value)
	default:
		return fmt.Errorf("topology key %q cannot be set from text", key)
	}
	return nil
}

// field finds the settable leaf field at path by TOML tags.
func field(v reflect.Value, path []string) (reflect.Value, bool) {
	for _, name := range path {
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, false
		}
		found := false
		for i := range v.NumField() {
			tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("toml"), ",")
			if tag == name {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			return reflect.Value{}, false
		}
	}
	if v.Kind() == reflect.Struct || v.Kind() == reflect.Map {
		return reflect.Value{}, false
	}
	return v, true
}

// IsKey reports whether Set accepts key (a fifo.depths key names a link
// that Validate checks against the machine's links).
func IsKey(key string) bool {
	if strings.HasPrefix(key, depthsKey) {
		return true
	}
	_, ok := settable(&Description{}, key)
	return ok
}

// settable is the field of d that Set sets for key: any but the name,
// which says what the description is rather than what it models.
func settable(d *Description, key string) (reflect.Value, bool) {
	if key == "name" {
		return reflect.Value{}, false
	}
	return field(reflect.ValueOf(d).Elem(), strings.Split(key, "."))
}
