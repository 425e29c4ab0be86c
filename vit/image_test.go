package vit

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustPreset(t testing.TB, name string) Config {
	cfg, err := Preset(name)
	require.NoError(t, err)
	return cfg
}

func encodePNG(t testing.TB, img image.Image) []byte {
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return buf.Bytes()
}

// pngHeader is a PNG signature and IHDR chunk claiming w×h 8-bit RGB, with no pixel data.
func pngHeader(w, h uint32) []byte {
	ihdr := binary.BigEndian.AppendUint32([]byte("IHDR"), w)
	ihdr = binary.BigEndian.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 2, 0, 0, 0)
	out := []byte("\x89PNG\r\n\x1a\n")
	out = binary.BigEndian.AppendUint32(out, uint32(len(ihdr)-4))
	out = append(out, ihdr...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(ihdr))
}

func TestDecodeImageGrayIsExact(t *testing.T) {
	cfg := mustPreset(t, "mnist-tiny")
	img := image.NewGray(image.Rect(0, 0, 28, 28))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	x, err := DecodeImage(bytes.NewReader(encodePNG(t, img)), cfg)
	require.NoError(t, err)
	require.Len(t, x, 28*28)
	for i, v := range img.Pix {
		require.Equal(t, (float32(v)/255-cfg.Mean[0])/cfg.Std[0], x[i], "pixel %d", i)
	}
}

func TestDecodeImageCropsTheCentre(t *testing.T) {
	cfg := mustPreset(t, "deit-tiny")
	// 300×200: the centred 200×200 square is green, the 50-pixel side bands red and blue.
	img := image.NewRGBA(image.Rect(0, 0, 300, 200))
	for y := range 200 {
		for x := range 300 {
			c := color.RGBA{0, 200, 0, 255}
			if x < 50 {
				c = color.RGBA{255, 0, 0, 255}
			} else if x >= 250 {
				c = color.RGBA{0, 0, 255, 255}
			}
			img.Set(x, y, c)
		}
	}
	x, err := DecodeImage(bytes.NewReader(encodePNG(t, img)), cfg)
	require.NoError(t, err)
	require.Len(t, x, 3*224*224)
	want := [3]float32{0, 200.0 / 255, 0}
	plane := 224 * 224
	for c := range 3 {
		norm := (want[c] - cfg.Mean[c]) / cfg.Std[c]
		for i := range plane {
			require.InDelta(t, norm, x[c*plane+i], 1e-4, "channel %d pixel %d", c, i)
		}
	}
}

func TestDecodeImageJPEGAndGrayConversion(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}))
	cfg := mustPreset(t, "mnist-tiny")
	x, err := DecodeImage(bytes.NewReader(buf.Bytes()), cfg)
	require.NoError(t, err)
	require.Len(t, x, 28*28)
	for _, v := range x {
		require.InDelta(t, (128.0/255-cfg.Mean[0])/cfg.Std[0], v, 0.02)
	}
}

func TestLoadImageErrors(t *testing.T) {
	cfg := mustPreset(t, "deit-small")
	dir := t.TempDir()
	valid := encodePNG(t, image.NewGray(image.Rect(0, 0, 10, 10)))
	tests := []struct {
		name, want string
		data       []byte
	}{
		{"empty.png", "not a PNG or JPEG", nil},
		{"text.png", "not a PNG or JPEG", []byte("hello, world")},
		{"zero.png", "decode png header", pngHeader(0, 5)},
		{"huge.png", "more than the limit", pngHeader(100000, 100000)},
		{"truncated.png", "decode png", valid[:len(valid)-20]},
		{"nodata.png", "decode png", pngHeader(10, 10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name)
			require.NoError(t, os.WriteFile(path, tt.data, 0o644))
			_, err := LoadImage(path, cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), path)
			assert.NotContains(t, err.Error(), "\n")
		})
	}
	_, err := LoadImage(filepath.Join(dir, "missing.png"), cfg)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func FuzzDecodeImage(f *testing.F) {
	gray := image.NewGray(image.Rect(0, 0, 5, 9))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i * 31)
	}
	f.Add(encodePNG(f, gray))
	rgba := image.NewNRGBA(image.Rect(0, 0, 7, 3))
	for i := range rgba.Pix {
		rgba.Pix[i] = uint8(i * 13)
	}
	f.Add(encodePNG(f, rgba))
	var jp bytes.Buffer
	require.NoError(f, jpeg.Encode(&jp, rgba, nil))
	f.Add(jp.Bytes())
	f.Add(pngHeader(0, 3))
	f.Add(pngHeader(4, 4))
	f.Add([]byte("GIF89a"))
	cfgs := []Config{mustPreset(f, "mnist-tiny"), mustPreset(f, "deit-tiny")}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, cfg := range cfgs {
			// A small pixel limit keeps the fuzzer's allocations small; the limit itself is tested above.
			x, err := decodeImage(bytes.NewReader(data), cfg, 1<<16)
			if err != nil {
				continue
			}
			require.Len(t, x, cfg.InChans*cfg.ImageSize*cfg.ImageSize)
			for _, v := range x {
				require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0))
			}
		}
	})
}
