package runtime

import (
	"fmt"
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

// TestPagedObjects checks that a graph's first pagedObjects FIFOs each lie
// in pages no other of them touches, and that they and the actors have
// their page of padding ahead of them, unwritten.
func TestPagedObjects(t *testing.T) {
	g := NewGraph()
	var fifos []*FIFO[int64]
	for i := range pagedObjects + 4 {
		f, err := NewFIFO[int64](g, fmt.Sprintf("f%d", i), 4, 1)
		if err != nil {
			t.Fatal(err)
		}
		fifos = append(fifos, f)
		g.AddActor("a"+f.name, func(*Ctx) error { return nil }, Writes(f))
	}
	size := unsafe.Sizeof(FIFO[int64]{})
	pages := make(map[uintptr]int)
	for i, f := range fifos[:pagedObjects] {
		start := uintptr(unsafe.Pointer(f))
		for p := start / pageIsolation; p <= (start+size-1)/pageIsolation; p++ {
			if j, ok := pages[p]; ok {
				t.Fatalf("FIFOs %d and %d share page %#x", j, i, p)
			}
			pages[p] = i
		}
		// The padding ahead of it belongs to the same allocation.
		if pad := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(f), -pageIsolation)), pageIsolation); pad[0] != 0 || pad[pageIsolation-1] != 0 {
			t.Fatalf("FIFO %d: padding written", i)
		}
	}
	for i, a := range g.actors[:pagedObjects] {
		if a.index != i {
			t.Fatalf("actor %d has index %d", i, a.index)
		}
		if pad := unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(a), -pageIsolation)), pageIsolation); pad[0] != 0 {
			t.Fatalf("actor %d: padding written", i)
		}
	}
	if s := unsafe.Sizeof(paged[actor]{}); s < pageIsolation+unsafe.Sizeof(actor{}) {
		t.Fatalf("paged actor is %d bytes", s)
	}
}
