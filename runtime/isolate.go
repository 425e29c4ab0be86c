package runtime

import "unsafe"

// isolation is how far apart the memory that different actors write must
// lie. Two graphs (or two coroutine groups of one) run on different cores,
// but their FIFOs, contexts and buffers are allocated side by side; a cache
// line that both cores write, or a line next to one the other core writes
// (the adjacent-line prefetcher fetches lines in 128-byte pairs), bounces
// between the cores at every access: two merge pipelines in one process on
// two cores made 20-30% fewer elements a second each than one alone, in two
// processes about as many. 128 bytes covers the pair.
const isolation = 128

// isolated is make([]T, n) with at least isolation bytes of unused memory
// on either side, so that it shares no cache line, nor line pair, with any
// other allocation.
func isolated[T any](n int) []T {
	var zero T
	size := max(int(unsafe.Sizeof(zero)), 1)
	m := (isolation + size - 1) / size // elements in a margin
	return make([]T, n+2*m)[m : m+n : m+n]
}

// A page of its own: the first pagedObjects FIFOs and actors of a graph
// each have a 4 KB page of padding ahead of them, so that no two of them
// share a page. Isolation keeps cache lines apart but not pages, and the
// processor's streaming prefetcher fetches runs of lines within a page,
// into the core that reads one of them and away from the core that writes
// them: two merge pipelines of one graph on two cores made 1.66-1.74x one
// pipeline on one core with their FIFOs and actors packed, 1.81-1.89x with
// a page each (Intel Xeon, 2026-12-03, four rounds interleaved). Beyond
// pagedObjects they are packed: the adder tree's 4,000 FIFOs and actors, a
// page each, ran 5-17% slower (more pages than the TLB holds), its first
// 256 so 3-9%, its first 64 as fast as packed; and the groups of so large
// a graph are large too, sharing a page only where one ends and the next
// begins.
const (
	pageIsolation = 4096
	pagedObjects  = 64
)

// paged wraps a T behind a page of padding.
type paged[T any] struct {
	_ [pageIsolation]byte
	v T
}

// newObject returns a new T, behind a page of padding if it is among the
// first pagedObjects of its kind in a graph (n is how many came before).
func newObject[T any](n int) *T {
	if n < pagedObjects {
		return &new(paged[T]).v
	}
	return new(T)
}
