package prune

import "math"

// The exact erf GELU and the float64 exponentials of the kernels package took
// two thirds of a training step (the backward pass needs GELU' too), so the
// trainer uses float32 approximations whose error (below 3e-7 relative for
// exp, 1.5e-7 absolute for erf) is far under what training can notice; the
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

// geluAndSlope writes GELU(x) into g and GELU'(x) = Φ(x) + x·φ(x) into
// slope, with erf from Abramowitz and Stegun 7.1.26. slope may alias x.
func geluAndSlope(g, slope, x []float32) {
	const (
		p                    = 0.3275911
		a1, a2, a3, a4, a5   = 0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429
		invSqrt2, invSqrt2Pi = 0.70710678118654752, 0.39894228040143268
	)
	for i, v := range x {
		z := v * invSqrt2
		e := expNeg(-z * z) // e^(-x²/2)
		az := math.Float32frombits(math.Float32bits(z) &^ (1 << 31))
		t := 1 / (1 + p*az)
		half := 0.5 * ((((a5*t+a4)*t+a3)*t+a2)*t + a1) * t * e // (1 - erf|z|)/2
		cdf := 1 - half
		if z < 0 {
			cdf = half
		}
		g[i] = v * cdf
		slope[i] = cdf + v*e*invSqrt2Pi
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
