package kernels

import "fmt"

// Patches writes the grid×grid patches (grid = size/patch) of one CHW image
// img (chans × size × size), each flattened in channel, row, column order, to
// dst[grid*grid × chans*patch*patch].
func Patches(dst, img []float32, chans, size, patch int) {
	grid := size / patch
	i := 0
	for pr := range grid {
		for pc := range grid {
			for ch := range chans {
				for r := range patch {
					src := img[ch*size*size+(pr*patch+r)*size+pc*patch:]
					i += copy(dst[i:i+patch], src[:patch])
				}
			}
		}
	}
}

// DropTokens keeps the kept tokens of the n×dim hidden states x (CLS first)
// whose scores (scores[j] belongs to token j+1, len n-1) are highest
// (TopK: descending, ties to the lower index) and fuses the others into one
// token, the sum of score×state (not renormalised). It writes
// [CLS, kept..., fused] to dst[(kept+2)×dim] (overwriting it) and returns the
// kept tokens' input positions (1..n-1) in descending score order.
// It requires 1 <= kept < n-1.
func DropTokens(dst, x []float32, n, dim int, scores []float32, kept int) []int {
	if kept < 1 || kept >= n-1 {
		panic(fmt.Sprintf("kernels: DropTokens keeps %d of %d tokens, want 1..%d", kept, n, n-2))
	}
	dst = dst[:(kept+2)*dim]
	copy(dst[:dim], x[:dim])
	pos := TopK(scores[:n-1], kept)
	isKept := make([]bool, n)
	for i := range pos {
		pos[i]++
		isKept[pos[i]] = true
		copy(dst[(i+1)*dim:(i+2)*dim], x[pos[i]*dim:])
	}
	// Fused in ascending token order: callers' results depend on this order
	// bit for bit.
	fused := dst[(kept+1)*dim:]
	clear(fused)
	for t := 1; t < n; t++ {
		if isKept[t] {
			continue
		}
		a := scores[t-1]
		for j, v := range x[t*dim : (t+1)*dim] {
			fused[j] += a * v
		}
	}
	return pos
}
