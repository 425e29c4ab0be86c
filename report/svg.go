package report

import "io"

// WriteSVG writes the per-layer chart (LayerPlotSVG) as an SVG file: the
// same plot the HTML report shows.
func (r *Report) WriteSVG(w io.Writer) error {
	svg, err := r.LayerPlotSVG()
	if err != nil {
		return err
	}
	_, err = w.Write(svg)
	return err
}
