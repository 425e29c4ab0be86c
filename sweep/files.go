package sweep

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"vitflow/internal/safefile"
	"vitflow/report"
)

// The files of a sweep's folder. points.jsonl holds one JSON row per line
// and is what a re-run reads back; points.csv holds the same rows for a
// spreadsheet. Rows are appended as points finish and both files are
// rewritten in point order when the sweep completes.
const (
	CSVFile  = "points.csv"
	JSONFile = "points.jsonl"
)

// files are a sweep's output files and the rows they hold, by hash.
type files struct {
	dir     string
	header  []string
	points  []Point
	rows    map[string]report.SweepRow
	csv, js *os.File
}

// openFiles reads the rows a previous run of the same sweep left in dir,
// rewrites both files with them in point order (which also checks that dir
// can be written, before anything runs) and opens them for appending.
func openFiles(dir string, s *Spec, points []Point) (*files, error) {
	if dir == "" {
		return nil, errors.New("sweep: no output folder")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sweep: output folder: %w", err)
	}
	f := &files{dir: dir, header: csvHeader(s.Axes), points: points, rows: map[string]report.SweepRow{}}
	// The files are read back and replaced: a pipe or a device there would
	// block the reading or swallow the rows.
	for _, name := range []string{CSVFile, JSONFile} {
		if err := safefile.CheckRegular(f.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("sweep: %w", err)
		}
	}
	if err := f.checkCSV(); err != nil {
		return nil, err
	}
	if err := f.readRows(); err != nil {
		return nil, err
	}
	if err := f.rewrite(); err != nil {
		return nil, err
	}
	var err error
	if f.js, err = os.OpenFile(f.path(JSONFile), os.O_WRONLY|os.O_APPEND, 0); err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	if f.csv, err = os.OpenFile(f.path(CSVFile), os.O_WRONLY|os.O_APPEND, 0); err != nil {
		f.js.Close()
		return nil, fmt.Errorf("sweep: %w", err)
	}
	return f, nil
}

func (f *files) path(name string) string { return filepath.Join(f.dir, name) }

// checkCSV refuses to replace a points.csv of another sweep (other columns).
func (f *files) checkCSV() error {
	file, err := os.Open(f.path(CSVFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	defer file.Close()
	head, err := csv.NewReader(bufio.NewReader(file)).Read()
	if err != nil || !slices.Equal(head, f.header) {
		return fmt.Errorf("sweep: %s holds another sweep's table (other columns): write to another folder or remove it", f.path(CSVFile))
	}
	return nil
}

// readRows reads points.jsonl. A last line cut short (the run was killed
// while writing it) is dropped, and so is a failed point's row, so that
// the point runs again (its error may have been passing); any other bad
// line, or a row of a point this sweep does not have, is an error.
func (f *files) readRows() error {
	data, err := os.ReadFile(f.path(JSONFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	byHash := map[string]Point{}
	for _, p := range f.points {
		byHash[p.Hash] = p
	}
	if i := bytes.LastIndexByte(data, '\n'); i < len(data)-1 {
		data = data[:i+1]
	}
	for n, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r report.SweepRow
		if err := json.Unmarshal(line, &r); err != nil {
			return fmt.Errorf("sweep: %s line %d: %v", f.path(JSONFile), n+1, err)
		}
		p, ok := byHash[r.Hash]
		if !ok || !slices.Equal(p.Settings, r.Settings) {
			return fmt.Errorf("sweep: %s holds rows of another sweep (line %d: %s; other axes, model, weights, images, -timing-only or vitflow version): write to another folder or remove it", f.path(JSONFile), n+1, r.Name())
		}
		if r.Error != "" {
			continue
		}
		r.Index = p.Index
		f.rows[r.Hash] = r
	}
	return nil
}

// add appends a finished row to both files.
func (f *files) add(r report.SweepRow) error {
	f.rows[r.Hash] = r
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	if _, err := f.js.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(csvRecord(r)) // a bytes.Buffer does not fail
	w.Flush()
	if _, err := f.csv.Write(b.Bytes()); err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	return nil
}

func (f *files) close() {
	f.js.Close()
	f.csv.Close()
}

// rewrite writes the rows held, in point order, to both files atomically.
func (f *files) rewrite() error {
	var js, table bytes.Buffer
	w := csv.NewWriter(&table)
	_ = w.Write(f.header)
	for _, p := range f.points {
		r, ok := f.rows[p.Hash]
		if !ok {
			continue
		}
		line, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("sweep: %w", err)
		}
		js.Write(append(line, '\n'))
		_ = w.Write(csvRecord(r))
	}
	w.Flush()
	for _, out := range []struct {
		name string
		data []byte
	}{{JSONFile, js.Bytes()}, {CSVFile, table.Bytes()}} {
		if err := writeFile(f.path(out.name), out.data); err != nil {
			return err
		}
	}
	return nil
}

// writeFile replaces path with data atomically.
func writeFile(path string, data []byte) error {
	out, err := safefile.Create(path)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	defer out.Abort()
	if _, err := out.Write(data); err != nil {
		return fmt.Errorf("sweep: %s: %w", path, err)
	}
	if err := out.Commit(); err != nil {
		return fmt.Errorf("sweep: %s: %w", path, err)
	}
	return nil
}

// csvHeader names the columns of points.csv.
func csvHeader(axes []Axis) []string {
	h := []string{"index", "hash"}
	for _, a := range axes {
		h = append(h, a.Key)
	}
	return append(h, "cycles_per_image", "latency_us", "images_per_second", "pe_utilization", "critical_cause",
		"accuracy", "macs", "params", "dsps", "bram36", "urams", "fifo_bytes", "weight_bytes", "on_chip_bytes", "error")
}

// csvRecord is a row of points.csv: numbers exact (shortest round-trip form).
func csvRecord(r report.SweepRow) []string {
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	i := func(x int64) string { return strconv.FormatInt(x, 10) }
	rec := []string{strconv.Itoa(r.Index), r.Hash}
	for _, s := range r.Settings {
		rec = append(rec, s.Value)
	}
	acc := ""
	if r.Accuracy != nil {
		acc = f(*r.Accuracy)
	}
	res := r.Resources
	return append(rec, f(r.CyclesPerImage), f(r.LatencyUS), f(r.ImagesPerSecond), f(r.PEUtilization), r.Cause,
		acc, i(r.MACs), i(r.Params), strconv.Itoa(res.DSPs), strconv.Itoa(res.BRAM36), strconv.Itoa(res.URAMs),
		i(res.FIFOBytes), i(res.WeightBytes), i(res.OnChipBytes), r.Error)
}
