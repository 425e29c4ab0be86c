package topology

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPresetsValidate(t *testing.T) {
	require.Equal(t, []string{"paper", "u250", "small"}, PresetNames())
	for _, name := range PresetNames() {
		d, err := Preset(name)
		require.NoError(t, err)
		assert.Equal(t, name, d.Name)
		assert.NoError(t, d.Validate(), name)
	}
	_, err := Preset("v100")
	assert.EqualError(t, err, `unknown topology preset "v100" (have paper, u250, small)`)
}

func TestPresetValues(t *testing.T) {
	p, err := Preset("paper")
	require.NoError(t, err)
	assert.Equal(t, Geometry{T: 12, C: 2, H: 4, P: 8}, p.MPCA)
	assert.Equal(t, 6144, p.MPCA.MACsPerCycle())
	assert.Equal(t, 300.0, p.ClockMHz)
	assert.Equal(t, FidelityIdeal, p.Fidelity)
	assert.Equal(t, PolicyIdeal, p.Balance)
	assert.True(t, p.Memory.WeightsOnChip)

	u, err := Preset("u250")
	require.NoError(t, err)
	assert.Equal(t, p.MPCA, u.MPCA)
	assert.Equal(t, FidelityDetailed, u.Fidelity)
	assert.Equal(t, PolicyBalanced, u.Balance)
	assert.False(t, u.Memory.WeightsOnChip)
	// 4 channels * 19.2 GB/s / 300 MHz = 256 B/cycle peak, 80% sustained.
	assert.InDelta(t, 0.8*4*19.2e9/300e6, u.Memory.BandwidthBytesPerCycle, 1e-9)
	assert.Equal(t, 4, u.Memory.Channels)
	assert.Equal(t, 2.0, u.Data.BytesPerWeight)

	// Presets are values: changing one must not change the next caller's.
	u.MPCA.T = 1
	again, err := Preset("u250")
	require.NoError(t, err)
	assert.Equal(t, 12, again.MPCA.T)
}

func TestWriteTOMLRoundTrip(t *testing.T) {
	for _, name := range PresetNames() {
		d, err := Preset(name)
		require.NoError(t, err)
		var buf bytes.Buffer
		require.NoError(t, d.WriteTOML(&buf))
		back, err := Parse("copy.toml", buf.Bytes())
		require.NoError(t, err, buf.String())
		assert.Equal(t, d, back, name)
	}
}

func TestParseBaseAndOverrides(t *testing.T) {
	d, err := Parse("mine.toml", []byte(`
base = "u250"
balance = "static"

[memory]
bandwidth_bytes_per_cycle = 0.5

[mpca]
h = 2
`))
	require.NoError(t, err)
	want, err := Preset("u250")
	require.NoError(t, err)
	want.Name = "mine.toml" // the file sets no name
	want.Balance = PolicyStatic
	want.Memory.BandwidthBytesPerCycle = 0.5
	want.MPCA.H = 2
	assert.Equal(t, want, d)

	d, err = Parse("named.toml", []byte("base = \"small\"\nname = \"tiny-card\"\n"))
	require.NoError(t, err)
	assert.Equal(t, "tiny-card", d.Name)
}

func TestParseBadInput(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"unknown top-level key", "base = \"u250\"\nclock = 300\n", `topology "x.toml": unknown key "clock"`},
		{"unknown nested key", "base = \"u250\"\n[memory]\nbandwith_bytes_per_cycle = 3\n",
			`topology "x.toml": unknown key "memory.bandwith_bytes_per_cycle"`},
		{"unknown table", "base = \"u250\"\n[hbm]\nchannels = 3\n", `topology "x.toml": unknown key "hbm"`},
		{"upper-case key", "base = \"u250\"\n[mpca]\nT = 3\n", `topology "x.toml": unknown key "mpca.T" (keys are lower case)`},
		{"fifo depth 0", "base = \"u250\"\n[fifo]\nweight_depth = 0\n",
			`topology "x.toml": fifo.weight_depth must be >= 1, got 0`},
		{"fifo latency 0", "base = \"u250\"\n[fifo]\nlatency_cycles = 0\n",
			`topology "x.toml": fifo.latency_cycles must be >= 1, got 0`},
		{"huge fifo", "base = \"u250\"\n[fifo]\noutput_depth = 1000000000\n",
			`topology "x.toml": fifo.output_depth must be <= 65536, got 1000000000`},
		{"negative bandwidth", "base = \"u250\"\n[memory]\nbandwidth_bytes_per_cycle = -4.0\n",
			`topology "x.toml": memory.bandwidth_bytes_per_cycle must be in [0.0625, 1e+09] (0.015625 per channel times memory.channels = 4), got -4`},
		{"zero bandwidth off chip", "base = \"u250\"\n[memory]\nbandwidth_bytes_per_cycle = 0\n",
			`topology "x.toml": memory.bandwidth_bytes_per_cycle must be in [0.0625, 1e+09] (0.015625 per channel times memory.channels = 4), got 0`},
		{"negative bandwidth on chip", "base = \"paper\"\n[memory]\nbandwidth_bytes_per_cycle = -1.0\n",
			`topology "x.toml": memory.bandwidth_bytes_per_cycle must be in [0, 1e+09], got -1`},
		{"nan clock", "base = \"u250\"\nclock_mhz = nan\n", `topology "x.toml": clock_mhz must be in [1, 100000], got NaN`},
		{"unknown policy", "base = \"u250\"\nbalance = \"greedy\"\n",
			`topology "x.toml": balance must be one of "ideal", "static", "balanced", got "greedy"`},
		{"unknown fidelity", "base = \"u250\"\nfidelity = \"exact\"\n",
			`topology "x.toml": fidelity must be one of "ideal", "detailed", got "exact"`},
		{"unknown selection", "base = \"u250\"\n[token_drop]\nselection = \"heap\"\n",
			`topology "x.toml": token_drop.selection must be one of "streaming", "bitonic", got "heap"`},
		{"unknown base", "base = \"tpu\"\n", `topology "x.toml": base: unknown topology preset "tpu" (have paper, u250, small)`},
		{"too many PEs", "base = \"u250\"\n[mpca]\nt = 1024\nc = 1024\n",
			`topology "x.toml": mpca: t*c*h must be <= 65536 PEs, got 4194304`},
		{"no base, incomplete", "name = \"bare\"\nfidelity = \"ideal\"\nclock_mhz = 100.0\nbalance = \"ideal\"\n",
			`topology "x.toml": missing key mpca.t: without base = "PRESET" every key must be given (-print-topology writes them all)`},
		{"empty file", "", `topology "x.toml": file is empty: start it with base = "u250"`},
		{"blank file", " \n\t\n", `topology "x.toml": file is empty: start it with base = "u250"`},
		{"only comments", "# my card\n", `topology "x.toml": file sets no keys (only comments): start it with base = "u250"`},
		{"no base, one key missing", completeWithout(t, "token_drop.comparators"),
			`topology "x.toml": missing key token_drop.comparators: without base`},
		{"no base, value present but zero", completeWith(t, "memory.channels", "0"),
			`topology "x.toml": memory.channels must be >= 1, got 0`},
		// Extreme numbers that used to give silent wrong answers.
		{"tiny bandwidth", "base = \"u250\"\n[memory]\nbandwidth_bytes_per_cycle = 1e-16\n",
			`topology "x.toml": memory.bandwidth_bytes_per_cycle must be in [0.0625, 1e+09] (0.015625 per channel times memory.channels = 4), got 1e-16`},
		{"denormal bandwidth", "base = \"small\"\n[memory]\nbandwidth_bytes_per_cycle = 1e-300\n",
			`topology "x.toml": memory.bandwidth_bytes_per_cycle must be in [0.015625, 1e+09] (0.015625 per channel times memory.channels = 1), got 1e-300`},
		{"bandwidth too small per channel", "base = \"u250\"\n[memory]\nchannels = 1024\nbandwidth_bytes_per_cycle = 8.0\n",
			`topology "x.toml": memory.bandwidth_bytes_per_cycle must be in [16, 1e+09] (0.015625 per channel times memory.channels = 1024), got 8`},
		{"infinite bandwidth", "base = \"u250\"\n[memory]\nbandwidth_bytes_per_cycle = inf\n",
			`topology "x.toml": memory.bandwidth_bytes_per_cycle must be in [0.0625, 1e+09]`},
		{"denormal clock", "base = \"u250\"\nclock_mhz = 5e-324\n", `topology "x.toml": clock_mhz must be in [1, 100000], got 5e-324`},
		{"tiny clock", "base = \"u250\"\nclock_mhz = 0.5\n", `topology "x.toml": clock_mhz must be in [1, 100000], got 0.5`},
		{"huge clock", "base = \"u250\"\nclock_mhz = 1e300\n", `topology "x.toml": clock_mhz must be in [1, 100000], got 1e+300`},
		{"tiny bytes per weight", "base = \"u250\"\n[data]\nbytes_per_weight = 1e-300\n",
			`topology "x.toml": data.bytes_per_weight must be in [0.125, 16], got 1e-300`},
		{"tiny bytes per activation", "base = \"u250\"\n[data]\nbytes_per_activation = 1e-20\n",
			`topology "x.toml": data.bytes_per_activation must be in [0.125, 16], got 1e-20`},
		{"huge fifo latency", "base = \"u250\"\n[fifo]\nlatency_cycles = 16777216\n",
			`topology "x.toml": fifo.latency_cycles must be <= 65536, got 16777216`},
		{"huge memory latency", "base = \"u250\"\n[memory]\nlatency_cycles = 100000\n",
			`topology "x.toml": memory.latency_cycles must be <= 65536, got 100000`},
		{"huge unit latency", "base = \"u250\"\n[softmax]\nlatency_cycles = 9000000\n",
			`topology "x.toml": softmax.latency_cycles must be <= 65536, got 9000000`},
		{"wrong type", "base = \"u250\"\n[mpca]\nt = \"twelve\"\n", `topology "x.toml": toml: line 3 (last key "mpca.t"): incompatible types`},
		{"syntax error", "base = \"u250\"\n[mpca\n", `topology "x.toml": toml: line 3: expected`},
		{"deep dotted key", strings.Repeat("a.", 300) + "a = 1\n", `topology "x.toml": more than 256 of the characters "." (300)`},
		{"deep nesting", "x = " + strings.Repeat("[", 65) + strings.Repeat("]", 65) + "\n",
			`topology "x.toml": more than 64 of the characters "[{" (65)`},
		{"long unknown key", strings.Repeat("a.", 100) + "a = 1\n", `topology "x.toml": unknown key "` + strings.Repeat("a.", 32) + `..."`},
		{"too large", strings.Repeat("#", MaxFileBytes+1), `topology "x.toml": file larger than 65536 bytes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.toml", []byte(tt.text))
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), tt.want), "got %q, want prefix %q", err, tt.want)
			assert.NotContains(t, err.Error(), "\n")
		})
	}
}

// completeWithout is the full u250 description as -print-topology writes
// it, without base and without the line of key (a dotted key).
func completeWithout(t *testing.T, key string) string {
	return completeWith(t, key, "")
}

// completeWith is the full u250 description without base, with key set to
// value ("" drops the key).
func completeWith(t *testing.T, key, value string) string {
	d, err := Preset("u250")
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, d.WriteTOML(&buf))
	table, name := "", key
	if i := strings.LastIndex(key, "."); i >= 0 {
		table, name = key[:i], key[i+1:]
	}
	var out []string
	current, found := "", false
	for line := range strings.Lines(buf.String()) {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "[") {
			current = strings.Trim(trimmed, "[]")
		}
		if k, _, ok := strings.Cut(trimmed, " = "); ok && current == table && k == name {
			found = true
			if value == "" {
				continue
			}
			line = name + " = " + value + "\n"
		}
		out = append(out, line)
	}
	require.True(t, found, "key %s not in the preset's TOML", key)
	return strings.Join(out, "")
}

// TestExtremeValuesAccepted checks the ends of the ranges are accepted, so
// that the limits reject only what overflows.
func TestExtremeValuesAccepted(t *testing.T) {
	tests := []struct{ name, text string }{
		{"slowest clock", "base = \"u250\"\nclock_mhz = 1.0\n"},
		{"fastest clock", "base = \"u250\"\nclock_mhz = 1e5\n"},
		{"slowest memory", "base = \"u250\"\n[memory]\nbandwidth_bytes_per_cycle = 0.0625\n"},
		{"fastest memory", "base = \"u250\"\n[memory]\nbandwidth_bytes_per_cycle = 1e9\n"},
		{"bandwidth ignored on chip", "base = \"paper\"\n[memory]\nbandwidth_bytes_per_cycle = 0.0\n"},
		{"1-bit weights", "base = \"u250\"\n[data]\nbytes_per_weight = 0.125\n"},
		{"longest latency", "base = \"u250\"\n[fifo]\nlatency_cycles = 65536\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("x.toml", []byte(tt.text))
			assert.NoError(t, err)
		})
	}
}

func TestValidateNamesDescription(t *testing.T) {
	d, err := Preset("small")
	require.NoError(t, err)
	d.Softmax.ElementsPerCycle = 0
	assert.EqualError(t, d.Validate(), `topology "small": softmax.elements_per_cycle must be >= 1, got 0`)
	d, _ = Preset("small")
	d.Name = ""
	assert.EqualError(t, d.Validate(), `topology "": name must not be empty`)
}

func TestLoad(t *testing.T) {
	d, err := Load("u250")
	require.NoError(t, err)
	assert.Equal(t, "u250", d.Name)

	dir := t.TempDir()
	path := filepath.Join(dir, "card.toml")
	require.NoError(t, os.WriteFile(path, []byte("base = \"small\"\n[mpca]\nh = 3\n"), 0o600))
	d, err = Load(path)
	require.NoError(t, err)
	assert.Equal(t, 3, d.MPCA.H)
	assert.Equal(t, path, d.Name)

	missing := filepath.Join(dir, "nope.toml")
	_, err = Load(missing)
	assert.EqualError(t, err, `topology "`+missing+`": neither a preset (paper, u250, small) nor an existing file`)

	_, err = Load(dir) // a directory is not a description
	require.Error(t, err)
	assert.Contains(t, err.Error(), `topology "`+dir+`"`)

	big := filepath.Join(dir, "big.toml")
	require.NoError(t, os.WriteFile(big, bytes.Repeat([]byte("# padding\n"), MaxFileBytes/10+1), 0o600))
	_, err = LoadFile(big)
	assert.EqualError(t, err, `topology "`+big+`": file larger than 65536 bytes`)
}

func FuzzParseTopology(f *testing.F) {
	for _, name := range PresetNames() {
		d, err := Preset(name)
		require.NoError(f, err)
		var buf bytes.Buffer
		require.NoError(f, d.WriteTOML(&buf))
		f.Add(buf.Bytes())
		f.Add([]byte("base = \"" + name + "\"\n"))
	}
	f.Add([]byte("base = \"u250\"\n[fifo]\nweight_depth = 0\n"))
	f.Add([]byte("base = \"u250\"\n[memory]\nbandwidth_bytes_per_cycle = -1e308\n"))
	f.Add([]byte("base = \"u250\"\nmpca = 3\n[mpca]\nt = 2\n"))
	f.Add([]byte("x = [[1], {a = 2}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse("fuzz.toml", data)
		if err != nil {
			assert.NotContains(t, err.Error(), "\n")
			return
		}
		require.NoError(t, d.Validate())
		var buf bytes.Buffer
		require.NoError(t, d.WriteTOML(&buf))
		back, err := Parse("fuzz.toml", buf.Bytes())
		require.NoError(t, err, buf.String())
		assert.Equal(t, d, back)
	})
}
