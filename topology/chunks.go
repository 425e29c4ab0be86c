package topology

import (
	"cmp"
	"context"
	"fmt"
)

// DefaultChunk is the most images one simulated run of RunChunks holds. A
// run keeps every image's records (each unit's clock history for the
// critical path, the tokens kept, the ops' spans), a few MB per DeiT image,
// so more images are simulated in chunks, one after another on the one
// built accelerator, and the chunks' results merged: memory stays that of
// one chunk whatever the image count. Between chunks the accelerator
// drains (the next chunk's first image cannot overlap the last one's
// tail), which adds at most one image's pipeline fill per chunk.
const DefaultChunk = 16

// Chunks describes a run of many images in chunks.
type Chunks struct {
	// Images is the number of images; Image loads image i, when its chunk
	// runs. A nil Image loads none: each image is a nil slice, which only a
	// timing-only accelerator accepts, since it reads no pixel.
	Images int
	Image  func(i int) ([]float32, error)
	// Size is the most images a chunk holds (0 means DefaultChunk).
	Size int
	// Trace is the trace of the run; it needs the run to be one chunk.
	Trace TraceOptions
	// Thin, if set, drops from a chunk's result what the caller will not
	// use (first says it is the first chunk) before it is merged.
	Thin func(res *SimResult, first bool)
	// Done, if set, hears of each chunk done: the images and the cycles so far.
	Done func(images int, cycles int64)
}

// RunChunks runs c.Images images on a, a chunk at a time, and merges the
// chunks' results (SimResult.Append). A failing chunk's error names its
// images when there are several chunks.
func (a *Accelerator) RunChunks(ctx context.Context, c Chunks) (*SimResult, error) {
	size := cmp.Or(c.Size, DefaultChunk)
	if c.Images < 1 {
		return nil, fmt.Errorf("simulate: %d images: want at least 1", c.Images)
	}
	if c.Trace.W != nil && c.Images > size {
		return nil, fmt.Errorf("simulate: a trace records one run of at most %d images, not %d", size, c.Images)
	}
	var all *SimResult
	for start := 0; start < c.Images; start += size {
		n := min(size, c.Images-start)
		px, err := c.load(start, n)
		if err == nil {
			var res *SimResult
			if res, err = a.RunTraced(ctx, px, c.Trace); err == nil {
				if c.Thin != nil {
					c.Thin(res, all == nil)
				}
				if all == nil {
					all = res
				} else {
					all.Append(res)
				}
			}
		}
		if err != nil {
			if c.Images > size {
				return nil, fmt.Errorf("images %d-%d: %w", start, start+n-1, err)
			}
			return nil, err
		}
		if c.Done != nil {
			c.Done(start+n, all.Cycles)
		}
	}
	return all, nil
}

// load loads images [start, start+n).
func (c Chunks) load(start, n int) ([][]float32, error) {
	px := make([][]float32, n)
	if c.Image == nil {
		return px, nil
	}
	for i := range px {
		var err error
		if px[i], err = c.Image(start + i); err != nil {
			return nil, err
		}
	}
	return px, nil
}
