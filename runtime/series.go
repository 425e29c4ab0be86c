package runtime

import "math/bits"

// seriesBuckets bounds the buckets of a FIFO's occupancy series: enough for
// a readable plot, and memory that does not grow with the run's length.
const seriesBuckets = 256

// series is a FIFO's occupancy over simulated time, summed over buckets of
// equal width: area[i] is the element-cycles held during [i*width,
// (i+1)*width). When the run outgrows the buckets, neighbours merge and the
// width doubles, so it is a power of two and a bucket's index a shift. The
// occupancy sweep sums the spans within a bucket itself and comes here when
// one leaves it (see occupancy.span).
type series struct {
	shift uint // width is 1 << shift
	area  []float64
}

func (s *series) width() int64 { return 1 << s.shift }

// add records level elements held over [from, to). Spans come in time order
// (the occupancy sweep's), but any order gives the same sums.
func (s *series) add(from, to int64, level float64) {
	for to > s.width()*seriesBuckets {
		s.coarsen()
	}
	if level == 0 {
		return
	}
	for from < to {
		end := min(to, (from>>s.shift+1)<<s.shift)
		s.addAt(from, level*float64(end-from))
		from = end
	}
}

// addAt adds area element-cycles to the bucket that holds time t, which
// must lie within the buckets' span (below width*seriesBuckets).
func (s *series) addAt(t int64, area float64) {
	i := t >> s.shift
	for int64(len(s.area)) <= i {
		s.area = append(s.area, 0)
	}
	s.area[i] += area
}

// coarsen merges neighbouring buckets, doubling the width.
func (s *series) coarsen() {
	n := (len(s.area) + 1) / 2
	for i := range n {
		a := s.area[2*i]
		if 2*i+1 < len(s.area) {
			a += s.area[2*i+1]
		}
		s.area[i] = a
	}
	s.area = s.area[:n]
	s.shift++
}

// appendSeries appends g's series, which starts at off, to f's: g's buckets
// are spread evenly over their span (g's makespan ends its last).
func appendSeries(f *FIFOStats, off int64, g *FIFOStats, gMakespan int64) {
	s := series{shift: uint(bits.TrailingZeros64(uint64(max(f.SeriesBucket, 1)))), area: f.Series}
	for j, a := range g.Series {
		from := off + int64(j)*g.SeriesBucket
		to := min(from+g.SeriesBucket, off+gMakespan)
		if to > from {
			s.add(from, to, a/float64(to-from))
		}
	}
	s.add(off+gMakespan, off+gMakespan, 0) // the width covers the whole run
	f.Series, f.SeriesBucket = s.area, s.width()
}
