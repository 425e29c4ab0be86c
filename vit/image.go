package vit

import (
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // registers the JPEG decoder
	_ "image/png"  // registers the PNG decoder
	"io"
	"os"

	"golang.org/x/image/draw"

	"vitflow/internal/safefile"
)

// MaxImagePixels bounds the size of an input image, checked from its header
// before any pixel is decoded, so a hostile file cannot claim gigabytes.
const MaxImagePixels = 1 << 26

// LoadImage reads a PNG or JPEG file and preprocesses it for cfg (see
// DecodeImage). A path that is not a regular file after following symlinks
// (a named pipe would block) is an error.
func LoadImage(path string, cfg Config) ([]float32, error) {
	if err := safefile.CheckRegular(path); err != nil {
		return nil, fmt.Errorf("load image: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load image: %w", err)
	}
	defer f.Close()
	x, err := DecodeImage(f, cfg)
	if err != nil {
		return nil, fmt.Errorf("load image %q: %w", path, err)
	}
	return x, nil
}

// DecodeImage decodes a PNG or JPEG image and preprocesses it for cfg the way
// the paper's evaluation does: the shorter side is resized to cfg.ImageSize
// (Catmull-Rom) and the centre cropped to ImageSize×ImageSize, which is the
// same as scaling the centred square of the image. Pixels are scaled to [0, 1],
// normalised with cfg.Mean/Std and returned in CHW layout. Three channels are
// RGB; any other channel count gets the luma in every channel. Transparent
// pixels count as composited on black.
func DecodeImage(r io.ReadSeeker, cfg Config) ([]float32, error) {
	return decodeImage(r, cfg, MaxImagePixels)
}

func decodeImage(r io.ReadSeeker, cfg Config, maxPixels int64) ([]float32, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	hdr, format, err := image.DecodeConfig(r)
	if err != nil {
		if errors.Is(err, image.ErrFormat) {
			return nil, errors.New("not a PNG or JPEG image")
		}
		return nil, fmt.Errorf("decode %s header: %w", format, err)
	}
	if format != "png" && format != "jpeg" {
		return nil, fmt.Errorf("%s images are not supported (PNG or JPEG only)", format)
	}
	if hdr.Width <= 0 || hdr.Height <= 0 {
		return nil, fmt.Errorf("image is %dx%d: nothing to classify", hdr.Width, hdr.Height)
	}
	if int64(hdr.Width)*int64(hdr.Height) > maxPixels {
		return nil, fmt.Errorf("image is %dx%d: more than the limit of %d pixels", hdr.Width, hdr.Height, maxPixels)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	img, _, err := image.Decode(r)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", format, err)
	}
	if img.Bounds().Empty() {
		return nil, errors.New("image is empty")
	}
	return imagePixels(img, cfg), nil
}

// imagePixels crops the centred square of src, scales it to cfg.ImageSize and
// normalises it into CHW floats. cfg must be valid.
func imagePixels(src image.Image, cfg Config) []float32 {
	b := src.Bounds()
	side := min(b.Dx(), b.Dy())
	x0, y0 := b.Min.X+(b.Dx()-side)/2, b.Min.Y+(b.Dy()-side)/2
	n := cfg.ImageSize
	if side != n {
		// 8-bit RGBA, like the PIL resize of torchvision's pipeline, and x/image/draw's fast paths.
		dst := image.NewRGBA(image.Rect(0, 0, n, n))
		draw.CatmullRom.Scale(dst, dst.Bounds(), src, image.Rect(x0, y0, x0+side, y0+side), draw.Src, nil)
		src, x0, y0 = dst, 0, 0
	}
	out := make([]float32, cfg.InChans*n*n)
	plane := n * n
	for y := range n {
		for x := range n {
			r, g, bl, _ := src.At(x0+x, y0+y).RGBA()
			i := y*n + x
			if cfg.InChans == 3 {
				for c, v := range [3]uint32{r, g, bl} {
					out[c*plane+i] = normalise(v, cfg.Mean[c], cfg.Std[c])
				}
				continue
			}
			// The integer luma of color.Gray16Model: exact for grey images.
			luma := (19595*r + 38470*g + 7471*bl + 1<<15) >> 16
			for c := range cfg.InChans {
				out[c*plane+i] = normalise(luma, cfg.Mean[c], cfg.Std[c])
			}
		}
	}
	return out
}

// normalise maps a 16-bit intensity to [0, 1] (exactly v8/255 for 8-bit
// images, as torchvision's ToTensor) and then to (v-mean)/std.
func normalise(v uint32, mean, std float32) float32 {
	return (float32(float64(v)/0xffff) - mean) / std
}
