package main

import (
	"bytes"
	"path/filepath"
	goruntime "runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// isHTML checks that b is a whole report page.
func isHTML(t *testing.T, b []byte) {
	t.Helper()
	assert.True(t, bytes.HasPrefix(b, []byte("<!DOCTYPE html>")), "an HTML page: %.40q", b)
	assert.True(t, bytes.HasSuffix(b, []byte("</html>\n")), "the whole page")
	assert.Contains(t, string(b), "<svg")
}

// TestHTMLIsDeterministic writes the report and a comparison under
// GOMAXPROCS 1 and 2: the pages are the same byte for byte, so that two
// runs can be told apart by diff.
func TestHTMLIsDeterministic(t *testing.T) {
	defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(0))
	dir := t.TempDir()
	a := jsonReport(t, dir, "a.json", "-topology", "small", "-images", "20")
	b := jsonReport(t, dir, "b.json", "-topology", "small", "-images", "20", "-balance", "static")
	for name, args := range map[string][]string{
		"run":     {"-topology", "small", "-images", "20"},
		"compare": {"-compare", a, b},
	} {
		t.Run(name, func(t *testing.T) {
			var pages []string
			for _, procs := range []int{1, 2} {
				goruntime.GOMAXPROCS(procs)
				path := filepath.Join(t.TempDir(), "page.html")
				code, _, stderr := invoke(append(args, "-html", path)...)
				require.Equal(t, 0, code, stderr)
				pages = append(pages, readFile(t, path))
			}
			assert.True(t, pages[0] == pages[1], "the same page under GOMAXPROCS 1 and 2")
		})
	}
}
