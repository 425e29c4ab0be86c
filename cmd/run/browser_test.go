package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Limits the default run's HTML report must meet.
const (
	maxReportBytes = 2 << 20
	maxRenderTime  = 2 * time.Second
)

// chromium returns the path of a Chromium or Chrome, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH (apt-get install chromium): the HTML report is not checked in a browser")
	return ""
}

// browserPage is what the browser saw of one page.
type browserPage struct {
	errors   []string // console errors and uncaught exceptions
	requests []string // requests other than the page itself
	load     time.Duration
	plots    [][2]float64 // width and height of each figure's SVG
	figures  int
}

// openPage loads the file at path in a fresh tab of browser and records what
// happened.
func openPage(t *testing.T, browser context.Context, path string) (context.Context, *browserPage) {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	page := &browserPage{}
	self := (&url.URL{Scheme: "file", Path: path}).String()
	var mu sync.Mutex
	// Listen sees every event in order, before the command that follows it
	// returns; it runs in the tab's reading loop, so it only records.
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value))
				}
				page.errors = append(page.errors, fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
			}
		case *runtime.EventExceptionThrown:
			page.errors = append(page.errors, "exception: "+ev.ExceptionDetails.Text)
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning {
				page.errors = append(page.errors, fmt.Sprintf("log %s: %s %s", ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
			}
		case *network.EventRequestWillBeSent:
			if ev.Request.URL != self {
				page.requests = append(page.requests, ev.Request.URL)
			}
		}
	}))
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(self), chromedp.WaitReady(chromedp.CSS("footer"))))
	loadMS, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`performance.getEntriesByType("navigation")[0].loadEventEnd`))
	require.NoError(t, err)
	page.load = time.Duration(loadMS * float64(time.Millisecond))
	page.plots, err = chromedp.Run(ctx, chromedp.Evaluate[[][2]float64](
		`Array.from(document.querySelectorAll("figure svg"), s => { const r = s.getBoundingClientRect(); return [r.width, r.height]; })`))
	require.NoError(t, err)
	page.figures, err = chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("figure").length`))
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	return ctx, page
}

// column reads the sort keys (data-v, or the text) of a table's column.
func column(t *testing.T, ctx context.Context, table string, col int) []string {
	t.Helper()
	keys, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](fmt.Sprintf(
		`Array.from(document.querySelectorAll(%q), c => c.hasAttribute("data-v") ? c.getAttribute("data-v") : c.textContent)`,
		fmt.Sprintf("#%s tbody tr td:nth-child(%d)", table, col+1))))
	require.NoError(t, err)
	return keys
}

// checkSorts clicks a table's heading twice: the column sorts ascending,
// then descending, and every row stays.
func checkSorts(t *testing.T, ctx context.Context, table string, col int, numeric bool) {
	t.Helper()
	before := column(t, ctx, table, col)
	require.Greater(t, len(before), 2, "table %s has rows", table)
	less := func(keys []string) func(i, j int) bool {
		if numeric {
			return func(i, j int) bool { return parse(t, keys[i]) < parse(t, keys[j]) }
		}
		return func(i, j int) bool { return strings.ToLower(keys[i]) < strings.ToLower(keys[j]) }
	}
	head := chromedp.CSS(fmt.Sprintf("#%s thead th:nth-child(%d)", table, col+1))
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(head)))
	up := column(t, ctx, table, col)
	assert.ElementsMatch(t, before, up)
	assert.True(t, sort.SliceIsSorted(up, less(up)), "%s column %d ascending: %v", table, col, up)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(head)))
	down := column(t, ctx, table, col)
	slices.Reverse(down)
	assert.True(t, sort.SliceIsSorted(down, less(down)), "%s column %d descending", table, col)
	sorted, err := chromedp.Run(ctx, chromedp.AttributeValue(head, "aria-sort"))
	require.NoError(t, err)
	assert.Equal(t, "descending", sorted.Value)
}

func parse(t *testing.T, s string) float64 {
	var x float64
	_, err := fmt.Sscan(s, &x)
	require.NoError(t, err, "a number: %q", s)
	return x
}

// TestHTMLInABrowser opens the default run's report, a comparison and a sweep in
// headless Chromium: they load with no console error and no network
// request, every plot has a size, the tables sort, and the default run's
// report is small and quick to render.
func TestHTMLInABrowser(t *testing.T) {
	exe := chromium(t)
	dir := t.TempDir()
	runPage := filepath.Join(dir, "run.html")
	code, _, stderr := invoke("-html", runPage)
	require.Equal(t, 0, code, stderr)
	st, err := os.Stat(runPage)
	require.NoError(t, err)
	assert.Less(t, st.Size(), int64(maxReportBytes), "the default run's report is under 2 MB")

	static := jsonReport(t, dir, "static.json", "-topology", "small", "-balance", "static")
	balanced := jsonReport(t, dir, "balanced.json", "-topology", "small", "-balance", "balanced")
	comparePage := filepath.Join(dir, "compare.html")
	code, _, stderr = invoke("-compare", static, balanced, "-html", comparePage)
	require.Equal(t, 0, code, stderr)

	sweepDir := filepath.Join(dir, "sweep")
	code, _, stderr = invoke("sweep", "-images", "4", "-set", "mpca.h=2,4", "-set", "balance=static,balanced", "-out", sweepDir)
	require.Equal(t, 0, code, stderr)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // root in a container has no user namespace for the sandbox
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 1024))
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	browser, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancel := context.WithTimeout(browser, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("chromium %s did not start within a minute", exe)
		}
		t.Fatalf("chromium %s: %v", exe, err)
	}

	tests := []struct {
		name    string
		path    string
		figures int
		sorts   []struct {
			table   string
			col     int
			numeric bool
		}
	}{
		{"run", runPage, 7, []struct {
			table   string
			col     int
			numeric bool
		}{{"units", 1, true}, {"units", 0, false}, {"fifos", 6, true}, {"layers", 4, true}}},
		{"compare", comparePage, 5, []struct {
			table   string
			col     int
			numeric bool
		}{{"figures-table", 1, true}, {"layers-table", 0, false}}},
		{"sweep", filepath.Join(sweepDir, "sweep.html"), 4, []struct {
			table   string
			col     int
			numeric bool
		}{{"points", 4, true}, {"points", 2, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, page := openPage(t, ctx, tt.path)
			assert.Empty(t, page.errors, "console errors")
			assert.Empty(t, page.requests, "network requests")
			assert.Equal(t, tt.figures, page.figures)
			assert.Len(t, page.plots, tt.figures, "every figure is an inline SVG")
			for i, p := range page.plots {
				assert.True(t, p[0] > 100 && p[1] > 100, "plot %d has a size: %v", i, p)
			}
			if tt.name == "run" {
				assert.Less(t, page.load, maxRenderTime, "the default run's report renders in under 2 s")
			}
			for _, s := range tt.sorts {
				checkSorts(t, tab, s.table, s.col, s.numeric)
			}
		})
	}
}
