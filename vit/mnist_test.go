package vit

import (
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadMNIST(t *testing.T) {
	train, test, err := LoadMNIST()
	require.NoError(t, err)
	assert.Equal(t, 60000, train.Count())
	assert.Equal(t, 10000, test.Count())
	testOnly, err := LoadMNISTTest()
	require.NoError(t, err)
	require.Equal(t, test.Count(), testOnly.Count())
	for _, i := range []int{0, 1234, 9999} {
		a, la := test.Get(i)
		b, lb := testOnly.Get(i)
		assert.Equal(t, la, lb)
		assert.Equal(t, a, b)
	}

	cfg, err := Preset("mnist-tiny")
	require.NoError(t, err)
	// The training set's normalised pixels have mean ~0 and std ~1 by construction of Mean/Std.
	var sum, sq float64
	for i := range train.Count() {
		img, label := train.Get(i)
		require.LessOrEqual(t, int(label), 9)
		for _, v := range MNISTPixels(img, cfg) {
			sum += float64(v)
			sq += float64(v) * float64(v)
		}
	}
	n := float64(train.Count() * 28 * 28)
	mean := sum / n
	assert.InDelta(t, 0, mean, 1e-3)
	assert.InDelta(t, 1, sq/n-mean*mean, 2e-3)

	img, label := test.Get(0)
	assert.EqualValues(t, 7, label, "the first test digit is a 7")
	x := MNISTPixels(img, cfg)
	require.Len(t, x, 28*28)
	for i, v := range img {
		assert.Equal(t, (float32(v)/255-cfg.Mean[0])/cfg.Std[0], x[i])
	}
}

func TestMNISTDirInModuleCache(t *testing.T) {
	esc, err := escapeModulePath(mnistModule)
	require.NoError(t, err)
	assert.Equal(t, "github.com/petar/!go!m!n!i!s!t", esc)
	_, err = escapeModulePath("example.com/caf\u00e9")
	assert.Error(t, err)

	t.Setenv(MNISTDirEnv, "")
	dir, err := MNISTDir()
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(moduleCache(), esc+"@v0.0.0-20150320212226-2fbe10d0fa63", "data"), dir)
}

func writeGz(t *testing.T, path string, words ...uint32) {
	f, err := os.Create(path)
	require.NoError(t, err)
	z := gzip.NewWriter(f)
	require.NoError(t, binary.Write(z, binary.BigEndian, words))
	require.NoError(t, z.Close())
	require.NoError(t, f.Close())
}

func TestLoadMNISTBadDir(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(MNISTDirEnv, dir)
	_, _, err := LoadMNIST()
	assert.ErrorContains(t, err, "holds no MNIST files")

	// A header claiming 2^31 images must be refused before GoMNIST allocates for them.
	writeGz(t, filepath.Join(dir, "train-images-idx3-ubyte.gz"), 0x803, 1<<31, 28, 28)
	writeGz(t, filepath.Join(dir, "train-labels-idx1-ubyte.gz"), 0x801, 1<<31)
	_, _, err = LoadMNIST()
	assert.ErrorContains(t, err, "exceed the limit")

	writeGz(t, filepath.Join(dir, "train-images-idx3-ubyte.gz"), 0x803, 2, 28, 28) // no pixels follow
	writeGz(t, filepath.Join(dir, "train-labels-idx1-ubyte.gz"), 0x801, 2)
	_, _, err = LoadMNIST()
	assert.ErrorContains(t, err, "train-images-idx3-ubyte.gz")
}

// TestMNISTDirErrorsPointToTheFix: a module cache or $VITFLOW_MNIST_DIR that
// is there but cannot be read says so, instead of suggesting a download that
// cannot help; a missing one still suggests it. (Unreadable is made with a
// regular file where a folder should be: permissions do not stop root.)
func TestMNISTDirErrorsPointToTheFix(t *testing.T) {
	esc, err := escapeModulePath(mnistModule)
	require.NoError(t, err)
	notDir := func(t *testing.T) string {
		cache := t.TempDir()
		mod := filepath.Join(cache, filepath.FromSlash(esc)+"@v0.0.0-20150320212226-2fbe10d0fa63")
		require.NoError(t, os.MkdirAll(mod, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(mod, "data"), nil, 0o644))
		return cache
	}
	tests := []struct {
		name      string
		cache     func(t *testing.T) string
		env       func(t *testing.T) string
		want, not string
	}{
		{"unreadable module data", notDir, nil, "cannot be read", "go mod download"},
		{"empty module cache", func(t *testing.T) string { return t.TempDir() }, nil, "go mod download", "cannot be read"},
		{"unreadable env folder", nil, func(t *testing.T) string {
			f := filepath.Join(t.TempDir(), "file")
			require.NoError(t, os.WriteFile(f, nil, 0o644))
			return f
		}, "cannot be read", "go mod download"},
		{"env folder without files", nil, func(t *testing.T) string { return t.TempDir() }, "holds no MNIST files", "go mod download"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(MNISTDirEnv, "")
			if tt.cache != nil {
				t.Setenv("GOMODCACHE", tt.cache(t))
			}
			if tt.env != nil {
				t.Setenv(MNISTDirEnv, tt.env(t))
			}
			_, err := MNISTDir()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), tt.not)
			assert.NotContains(t, err.Error(), "\n")
		})
	}
}
