package runtime

import (
	"strings"
	"testing"
)

func TestSameString(t *testing.T) {
	const label = "merge"
	for _, tc := range []struct {
		name string
		a, b string
		want bool
	}{
		{"one string", label, label, true},
		{"equal bytes elsewhere", label, strings.Clone(label), true},
		{"prefix", label, label[:4], false},
		{"same length", label, "check", false},
		{"empty", "", "", true},
		{"empty and not", "", label, false},
	} {
		if got := sameString(tc.a, tc.b); got != tc.want || got != (tc.a == tc.b) {
			t.Errorf("%s: sameString(%q, %q) = %v, want %v", tc.name, tc.a, tc.b, got, tc.want)
		}
	}
}
