package benches

import "testing"

// hostSink keeps the loops' results live.
var hostSink uint64

// hostChain is one chain of dependent multiply-adds: each waits for the one
// before, so it runs at the core's clock and uses one of its integer units.
//
//go:noinline
func hostChain(n int) uint64 {
	x := uint64(1)
	for range n {
		x = x*0x9E3779B97F4A7C15 + 7
	}
	return x
}

// hostWide is eight independent chains of xor-adds: enough work each cycle
// to keep every integer unit of the core busy.
//
//go:noinline
func hostWide(n int) uint64 {
	var a, b, c, d, e, f, g, h uint64 = 1, 2, 3, 4, 5, 6, 7, 8
	for range n {
		a = (a ^ 3) + 1
		b = (b ^ 5) + 2
		c = (c ^ 7) + 3
		d = (d ^ 9) + 4
		e = (e ^ 11) + 5
		f = (f ^ 13) + 6
		g = (g ^ 15) + 7
		h = (h ^ 17) + 8
	}
	return a + b + c + d + e + f + g + h
}

// hostChase follows a random cycle of pointers through a buffer of words
// (a random cyclic permutation): one load at a time, each from wherever the
// last pointed, so it runs at the speed of the cache the buffer fits in.
//
//go:noinline
func hostChase(next []uint32, n int) uint32 {
	i := uint32(0)
	for range n {
		i = next[i]
	}
	return i
}

// chaseBuffer returns a random cyclic permutation of size words (Sattolo's
// algorithm, from a fixed seed), each word on a cache line of its own.
func chaseBuffer(size int) []uint32 {
	const stride = 16 // words a 64-byte line
	lines := size / stride
	perm := make([]int, lines)
	for i := range perm {
		perm[i] = i
	}
	x := uint64(1)
	for i := lines - 1; i > 0; i-- {
		x = x*6364136223846793005 + 1442695040888963407
		j := int(x>>33) % i
		perm[i], perm[j] = perm[j], perm[i]
	}
	next := make([]uint32, size)
	for k := range lines {
		next[perm[k]*stride] = uint32(perm[(k+1)%lines] * stride)
	}
	return next
}

// BenchmarkHost tells what shares this machine's cores, for
// vcpu-speeds.sh. A core's clock sets both loops' speeds; another
// program on the same physical core (a hyperthread sibling, perhaps another
// tenant's) takes integer units from the wide loop but leaves the single
// chain its one. So a wide loop that wanders while the chain holds steady
// means the core is shared. l2 chases pointers through 512 KiB, which the
// core's own level-2 cache holds (1 MiB on the Zen 4, 2 MiB on the Xeon)
// unless something else on the core fills it.
func BenchmarkHost(b *testing.B) {
	const n = 1 << 20
	l2 := chaseBuffer(512 << 10 / 4)
	for _, k := range []struct {
		name string
		loop func(int) uint64
	}{{"chain", hostChain}, {"wide", hostWide}, {"l2", func(n int) uint64 { return uint64(hostChase(l2, n)) }}} {
		b.Run(k.name, func(b *testing.B) {
			for b.Loop() {
				hostSink += k.loop(n)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Miter/s")
		})
	}
}
