package runtime

import (
	"testing"
	"unsafe"
)

// TestIsolated checks that isolated gives n zero elements, no spare
// capacity (an append must not grow into the margin), and margins of at
// least isolation bytes: the element before and after the slice lie in
// the same allocation, unused.
func TestIsolated(t *testing.T) {
	for _, n := range []int{0, 1, 3, 32, 1000} {
		s := isolated[int64](n)
		if len(s) != n || cap(s) != n {
			t.Fatalf("isolated(%d): len %d cap %d", n, len(s), cap(s))
		}
		for i, v := range s {
			if v != 0 {
				t.Fatalf("isolated(%d)[%d] = %d", n, i, v)
			}
		}
		if n == 0 {
			continue // no element to find the backing array by
		}
		// The backing array starts isolation bytes before the slice and
		// ends isolation bytes after it: reading there stays inside it.
		base := unsafe.Pointer(unsafe.SliceData(s))
		before := unsafe.Slice((*int64)(unsafe.Add(base, -isolation)), isolation/8)
		after := unsafe.Slice((*int64)(unsafe.Add(base, n*8)), isolation/8)
		for _, v := range append(before, after...) {
			if v != 0 {
				t.Fatalf("isolated(%d): margin written", n)
			}
		}
	}
	if s := isolated[struct{}](5); len(s) != 5 {
		t.Fatalf("isolated zero-size: len %d", len(s))
	}
}
