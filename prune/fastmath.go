package prune

import "math"

// The exact erf GELU and the float64 exponentials of the kernels package took
// two thirds of a training step (the backward pass needs GELU' too), so the
// trainer uses float32 approximations whose error (below 3e-7 relative for
// exp, 5e-7 absolute for Φ) is far under what training can notice; the
// logits still match the reference forward within 1e-4 (tested).

// expNeg is e^x for x <= 0 in float32 (Cephes expf: range reduction by
// ln 2 and a degree-6 polynomial). Below -87 it
// returns about 1e-38 instead of rounding to zero.
func expNeg(x float32) float32 {
	x = max(x, -87)
	n := -int32(0.5 - x*1.44269504088896341) // round(x·log2 e); the operand is >= 0.5, so truncation floors
	fn := float32(n)
	r := x - fn*0.693359375 + fn*2.12194440e-4
	p := ((((1.9875691500e-4*r+1.3981999507e-3)*r+8.3334519073e-3)*r+4.1665795894e-2)*r+1.6666665459e-1)*r + 5.0000001201e-1
	return (p*r*r + r + 1) * math.Float32frombits(uint32(n+127)<<23)
}

// GELU(x) = x·Φ(x) and GELU'(x) = Φ(x) + x·φ(x) come from a table of Φ and φ
// at steps of 1/geluSteps over [-geluRange, geluRange], linearly
// interpolated: error below 5e-7 in Φ, and no exponential per element (the
// exp-based erf took a quarter of a training step). Outside the range Φ is 0
// or 1 and φ below 1e-8.
const (
	geluRange = 6
	geluSteps = 256
)

// geluTable holds (Φ, φ) pairs at x = -geluRange + i/geluSteps; built once, read only.
var geluTable = func() []float32 {
	n := 2*geluRange*geluSteps + 1
	t := make([]float32, 2*(n+1)) // one spare pair so interpolation at the top edge stays in range
	for i := range n + 1 {
		x := -geluRange + float64(i)/geluSteps
		t[2*i] = float32(0.5 * (1 + math.Erf(x/math.Sqrt2)))
		t[2*i+1] = float32(math.Exp(-0.5*x*x) / math.Sqrt(2*math.Pi))
	}
	return t
}()

// geluAndSlope writes GELU(x) into g and GELU'(x) into slope (may alias x).
func geluAndSlope(g, slope, x []float32) {
	tab := geluTable
	top := float32(2 * geluRange * geluSteps)
	for i, v := range x {
		pos := (v + geluRange) * geluSteps
		if !(pos >= 0) { // also NaN
			g[i], slope[i] = 0, 0
			continue
		}
		if pos >= top {
			g[i], slope[i] = v, 1
			continue
		}
		k := int(pos)
		f := pos - float32(k)
		pair := tab[2*k : 2*k+4]
		cdf := pair[0] + f*(pair[2]-pair[0])
		pdf := pair[1] + f*(pair[3]-pair[1])
		g[i] = v * cdf
		slope[i] = cdf + v*pdf
	}
}

// softmaxRows is kernels.SoftmaxRows with expNeg.
func softmaxRows(x []float32, cols int) {
	for r := 0; r < len(x); r += cols {
		row := x[r : r+cols]
		mx := row[0]
		for _, v := range row {
			mx = max(mx, v)
		}
		var sum float32
		for i, v := range row {
			e := expNeg(v - mx)
			row[i] = e
			sum += e
		}
		inv := 1 / sum
		for i := range row {
			row[i] *= inv
		}
	}
}
