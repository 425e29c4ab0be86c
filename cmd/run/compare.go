package main

import (
	"fmt"
	"io"
	"os"

	"vitflow/report"
)

// compareReports is -compare: it reads every report, then prints the
// comparison (as JSON with -json) and writes its HTML page with -html.
// Every input is read and checked before any output is opened, so that a
// bad report leaves nothing behind.
func compareReports(opt *options, stdout io.Writer) error {
	runs := make([]*report.Report, len(opt.reports))
	names := make([]string, len(opt.reports))
	for i, path := range opt.reports {
		rep, err := readReport(path)
		if err != nil {
			return err
		}
		runs[i], names[i] = textSafe(rep), shownName(path)
	}
	c, err := report.Compare(names, runs)
	if err != nil {
		return err
	}
	page, err := createOutput("-html", opt.html)
	if err != nil {
		return err
	}
	defer page.Abort()
	if page != nil {
		if err := writeOut("-html", page, c.WriteHTML); err != nil {
			return err
		}
	}
	if opt.json {
		return writeJSON(stdout, c)
	}
	return c.WriteText(stdout)
}

func readReport(path string) (*report.Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("-compare: %w", err)
	}
	defer f.Close()
	rep, err := report.ReadReport(f)
	if err != nil {
		return nil, fmt.Errorf("-compare %s: %w", path, err)
	}
	return rep, nil
}
