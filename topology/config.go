package topology

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Fidelity selects how much of the accelerator a simulation costs.
type Fidelity string

const (
	// FidelityIdeal keeps weights on chip, balances PE work ideally whatever
	// Balance says, and makes the special-function units, token dropping,
	// patch embedding and classifier free: the analytical estimator's machine.
	FidelityIdeal Fidelity = "ideal"
	// FidelityDetailed costs everything the description lists.
	FidelityDetailed Fidelity = "detailed"
)

// Policy is the load-balancing policy that assigns output blocks to PEs.
type Policy string

const (
	// PolicyIdeal charges every PE exactly the average work: the estimator's assumption.
	PolicyIdeal Policy = "ideal"
	// PolicyStatic assigns output blocks to PEs in order.
	PolicyStatic Policy = "static"
	// PolicyBalanced assigns the heaviest output blocks first, each to the least-loaded PE.
	PolicyBalanced Policy = "balanced"
)

// Selection is the token dropping module's top-k selection scheme.
type Selection string

const (
	// SelectStreaming is a systolic insertion queue of depth kept that consumes
	// ScoresPerCycle scores a cycle and then drains the kept indices:
	// ceil((N-1)/ScoresPerCycle) + kept cycles for N tokens (CLS included).
	SelectStreaming Selection = "streaming"
	// SelectBitonic is a bitonic sorting network over P = the next power of two
	// >= N-1 scores, log2(P)*(log2(P)+1)/2 stages of P/2 compare-exchanges run
	// Comparators at a time: stages * ceil(P/2/Comparators) cycles.
	SelectBitonic Selection = "bitonic"
)

// Description is everything the builder needs to model one accelerator. Every
// field is set (there are no implicit defaults): start from a preset. The TOML
// key of each field is in its tag; units are in the key names.
type Description struct {
	// Name identifies the description in reports.
	Name string `toml:"name"`
	// Fidelity is "ideal" or "detailed".
	Fidelity Fidelity `toml:"fidelity"`
	// ClockMHz is the accelerator clock; it only converts cycles to time.
	ClockMHz float64 `toml:"clock_mhz"`
	// Balance is the load-balancing policy: "ideal", "static" or "balanced"
	// (detailed fidelity only).
	Balance Policy `toml:"balance"`

	MPCA       Geometry  `toml:"mpca"`
	FIFO       FIFOs     `toml:"fifo"`
	Memory     Memory    `toml:"memory"`
	Data       Data      `toml:"data"`
	Softmax    Unit      `toml:"softmax"`
	LayerNorm  Unit      `toml:"layernorm"`
	GELU       Unit      `toml:"gelu"`
	Residual   Unit      `toml:"residual"`
	TokenDrop  TokenDrop `toml:"token_drop"`
	PatchEmbed MACUnit   `toml:"patch_embed"`
	Classifier MACUnit   `toml:"classifier"`
}

// Geometry is the shape of the multi-level parallel compute array (MPCA):
// H compute head modules (CHMs), each a T×C array of PEs, each PE a P×P
// systolic array. One PE multiplies a b×b activation block by a b×b weight
// block in ceil(b/P)^2 * b cycles.
type Geometry struct {
	T int `toml:"t"` // PE rows per CHM
	C int `toml:"c"` // PE columns per CHM
	H int `toml:"h"` // CHMs
	P int `toml:"p"` // side of a PE's systolic array
}

// PEs is the number of PEs in one CHM, T*C.
func (g Geometry) PEs() int { return g.T * g.C }

// MACsPerCycle is the peak multiply-accumulates per cycle of the whole MPCA.
func (g Geometry) MACsPerCycle() int { return g.T * g.C * g.H * g.P * g.P }

// FIFOs sizes the links between units. Depths count elements: a weight
// link carries one b×b weight block per element, every other link one row
// block of b tokens (one head's row block of scores or probabilities on the
// attention loop), so a FIFO's on-chip bytes are its depth times its
// element's size (the run reports both). The token buffer's skip
// connections and the command FIFO are not FIFOs of the design but the
// on-chip token buffer and the controller's queue: they are sized by the
// model and cannot be set.
type FIFOs struct {
	// LatencyCycles is the enqueue-to-visibility latency of every link (>= 1);
	// a unit's pipeline latency is added to its output links.
	LatencyCycles int `toml:"latency_cycles"`
	// WeightDepth: non-zero weight blocks, weight loader -> each CHM
	// (weights->chmN).
	WeightDepth int `toml:"weight_depth"`
	// ActivationDepth: row blocks into the MPCA (layernorm1->mpca,
	// softmax->mpca, layernorm2->mpca, gelu->mpca).
	ActivationDepth int `toml:"activation_depth"`
	// OutputDepth: row blocks out of the MPCA (mpca->softmax,
	// mpca->residual1, mpca->gelu, mpca->residual2).
	OutputDepth int `toml:"output_depth"`
	// SFUDepth: row blocks between the other units (patchembed->layernorm1,
	// residual1->layernorm2, residual2->layernorm1, residual2->classifier).
	SFUDepth int `toml:"sfu_depth"`
	// TokenDropDepth: row blocks into and out of the token dropping module
	// (softmax->tokendrop, residual1->tokendrop, tokendrop->layernorm2).
	TokenDropDepth int `toml:"token_drop_depth"`
	// Depths sets single links by name, overriding their class, e.g.
	// "mpca->gelu" = 1.
	Depths map[string]int `toml:"depths,omitempty"`
}

// Link names of the accelerator, by depth class.
var (
	activationLinks = []string{"layernorm1->mpca", "softmax->mpca", "layernorm2->mpca", "gelu->mpca"}
	outputLinks     = []string{"mpca->softmax", "mpca->residual1", "mpca->gelu", "mpca->residual2"}
	sfuLinks        = []string{"patchembed->layernorm1", "residual1->layernorm2", "residual2->layernorm1", "residual2->classifier"}
	tokenDropLinks  = []string{"softmax->tokendrop", "residual1->tokendrop", "tokendrop->layernorm2"}
)

// LinkNames lists every link whose depth a description sets, for a
// machine of h CHMs.
func LinkNames(h int) []string {
	names := slices.Concat(activationLinks, outputLinks, sfuLinks, tokenDropLinks)
	for i := range h {
		names = append(names, weightLink(i))
	}
	return names
}

func weightLink(chm int) string { return fmt.Sprintf("weights->chm%d", chm) }

// Depth is the depth of the link called name: its entry in Depths, else its class's.
func (f FIFOs) Depth(name string) int {
	if d, ok := f.Depths[name]; ok {
		return d
	}
	switch {
	case slices.Contains(activationLinks, name):
		return f.ActivationDepth
	case slices.Contains(outputLinks, name):
		return f.OutputDepth
	case slices.Contains(sfuLinks, name):
		return f.SFUDepth
	case slices.Contains(tokenDropLinks, name):
		return f.TokenDropDepth
	}
	return f.WeightDepth
}

// Memory is the off-chip memory the weight loader streams from.
type Memory struct {
	// WeightsOnChip keeps every weight in on-chip memory: no off-chip traffic,
	// and the fields below are not used.
	WeightsOnChip bool `toml:"weights_on_chip"`
	// BandwidthBytesPerCycle is the sustained bandwidth of all channels
	// together, in bytes per accelerator cycle.
	BandwidthBytesPerCycle float64 `toml:"bandwidth_bytes_per_cycle"`
	// LatencyCycles is the time from a request to its first byte.
	LatencyCycles int `toml:"latency_cycles"`
	// Channels is the number of independent channels; each has an equal share
	// of the bandwidth (CHM i streams from channel i mod Channels).
	Channels int `toml:"channels"`
}

// Data is the storage width of numbers on the accelerator; it sizes memory
// traffic (numerics are float32 regardless).
type Data struct {
	BytesPerWeight     float64 `toml:"bytes_per_weight"`
	BytesPerActivation float64 `toml:"bytes_per_activation"`
}

// Unit is a pipelined special-function unit (softmax, LayerNorm, GELU,
// residual add): n elements take ceil(n/ElementsPerCycle) + LatencyCycles cycles.
type Unit struct {
	ElementsPerCycle int `toml:"elements_per_cycle"`
	LatencyCycles    int `toml:"latency_cycles"`
}

// TokenDrop is the token dropping module: it selects the top-k tokens by
// head-averaged CLS attention, fuses the rest, and re-packs the token buffer.
type TokenDrop struct {
	// Selection is "streaming" or "bitonic"; see the Selection constants for its cost.
	Selection Selection `toml:"selection"`
	// ScoresPerCycle is the streaming selector's input rate.
	ScoresPerCycle int `toml:"scores_per_cycle"`
	// Comparators is the bitonic network's compare-exchange units.
	Comparators int `toml:"comparators"`
	// LatencyCycles is a fixed cost per use (head averaging, control).
	LatencyCycles int `toml:"latency_cycles"`
	// FusionMACsPerCycle is the rate of the weighted sum of dropped tokens
	// (dropped*D multiply-accumulates).
	FusionMACsPerCycle int `toml:"fusion_macs_per_cycle"`
	// RepackElementsPerCycle is the rate of moving kept tokens in the token
	// buffer (kept*D elements).
	RepackElementsPerCycle int `toml:"repack_elements_per_cycle"`
}

// MACUnit is a dense engine (patch embedding, classifier), costed only in
// detailed fidelity: m multiply-accumulates take ceil(m/MACsPerCycle) + LatencyCycles cycles.
type MACUnit struct {
	MACsPerCycle  int `toml:"macs_per_cycle"`
	LatencyCycles int `toml:"latency_cycles"`
}

// Limits that keep a description from asking the simulator for unbounded
// memory or time, or for numbers whose cycle counts overflow.
//
// The ranges keep every cycle count of one image of the largest model,
// deit-base (12 layers of 197 tokens, D=768, 3,072 MLP neurons, 85 M
// streamed weights, about 18 G MACs), below 2^40, so that the sums over
// 10,000 images stay below 2^53 (exact in float64 and int64, finite in
// microseconds). Bounding every unit's work serially, which bounds the
// makespan because every cycle of the critical path is some unit's work, a
// latency or a wait for one:
//   - MPCA: a PE does at least one MAC a cycle (ceil(b/p)^2*b <= b^3), with
//     row-block padding under 2^35 cycles;
//   - memory: 85 M weights * 16 bytes, all on one channel of at least
//     minChannelBandwidth bytes a cycle: 2^30.3 * 64 = 2^36.3 cycles;
//   - special-function units at one element a cycle: under 2^25 cycles; patch
//     embedding at one MAC a cycle 2^26.8;
//   - latencies: at most about 2^16 row blocks a unit (b=1: 197 tokens * 12
//     heads * 12 layers, twice), each paying at most three latencies of
//     maxLatency on a loop: 2^33.6 cycles.
//
// The sum is under 2^38. A bandwidth of 1e-16 bytes a cycle would otherwise
// make one block's memory time overflow int64, and a clock of 5e-324 MHz
// turn microseconds into +Inf.
const (
	// MaxFileBytes is the largest description file Load and Parse accept: a
	// full description is about 2 KiB, and it bounds the decoding time
	// (tens of milliseconds).
	MaxFileBytes = 64 << 10
	maxDepth     = 1 << 16 // elements per FIFO
	maxPEs       = 1 << 16 // T*C*H
	maxSide      = 1 << 10 // each of T, C, H, P
	maxLatency   = 1 << 16 // any latency, in cycles: real ones are tens to hundreds
	maxRate      = 1 << 24 // any per-cycle rate
	maxDots      = 256     // '.' characters in a file
	maxBrackets  = 64      // '[' and '{' characters in a file

	// minClockMHz and maxClockMHz bound clock_mhz: 1 MHz to 100 GHz covers
	// every FPGA and ASIC; below, 2^53 cycles could be an infinite time.
	minClockMHz, maxClockMHz = 1, 1e5
	// minChannelBandwidth is the least bandwidth of one memory channel, in
	// bytes a cycle (1/64: 4.7 MB/s at 300 MHz, far below any DRAM or flash
	// channel); maxBandwidth bounds all channels together.
	minChannelBandwidth, maxBandwidth = 1.0 / 64, 1e9
	// minBytes and maxBytes bound data.bytes_per_weight and
	// data.bytes_per_activation: from 1-bit to 128-bit numbers.
	minBytes, maxBytes = 1.0 / 8, 16
)

// Validate reports the first field of d that is out of range, naming it by its TOML key.
func (d Description) Validate() error {
	if err := d.check(); err != nil {
		return fmt.Errorf("topology %q: %w", d.Name, err)
	}
	return nil
}

func (d Description) check() error {
	c := new(checker)
	if d.Name == "" {
		c.fail("name must not be empty")
	}
	c.oneOf("fidelity", string(d.Fidelity), string(FidelityIdeal), string(FidelityDetailed))
	c.floatIn("clock_mhz", d.ClockMHz, minClockMHz, maxClockMHz)
	c.oneOf("balance", string(d.Balance), string(PolicyIdeal), string(PolicyStatic), string(PolicyBalanced))

	c.intIn("mpca.t", d.MPCA.T, 1, maxSide)
	c.intIn("mpca.c", d.MPCA.C, 1, maxSide)
	c.intIn("mpca.h", d.MPCA.H, 1, maxSide)
	c.intIn("mpca.p", d.MPCA.P, 1, maxSide)
	if c.err == nil && d.MPCA.T*d.MPCA.C*d.MPCA.H > maxPEs {
		c.fail("mpca: t*c*h must be <= %d PEs, got %d", maxPEs, d.MPCA.T*d.MPCA.C*d.MPCA.H)
	}

	c.intIn("fifo.latency_cycles", d.FIFO.LatencyCycles, 1, maxLatency)
	c.intIn("fifo.weight_depth", d.FIFO.WeightDepth, 1, maxDepth)
	c.intIn("fifo.activation_depth", d.FIFO.ActivationDepth, 1, maxDepth)
	c.intIn("fifo.output_depth", d.FIFO.OutputDepth, 1, maxDepth)
	c.intIn("fifo.sfu_depth", d.FIFO.SFUDepth, 1, maxDepth)
	c.intIn("fifo.token_drop_depth", d.FIFO.TokenDropDepth, 1, maxDepth)
	if c.err == nil {
		names := LinkNames(d.MPCA.H)
		keys := slices.Sorted(maps.Keys(d.FIFO.Depths))
		for _, k := range keys {
			if !slices.Contains(names, k) {
				c.fail("fifo.depths: unknown link %q (have %s; the token buffer's skip links and the command queue are sized by the model)", shorten(k), strings.Join(names, ", "))
			}
			c.intIn(fmt.Sprintf("fifo.depths.%q", k), d.FIFO.Depths[k], 1, maxDepth)
		}
	}

	c.intIn("memory.latency_cycles", d.Memory.LatencyCycles, 0, maxLatency)
	c.intIn("memory.channels", d.Memory.Channels, 1, 1024)
	if d.Memory.WeightsOnChip {
		// Not used, but it must still be a number a file can be written with.
		c.floatIn("memory.bandwidth_bytes_per_cycle", d.Memory.BandwidthBytesPerCycle, 0, maxBandwidth)
	} else if c.err == nil {
		// Each channel has an equal share, and one channel may carry every weight.
		lo := minChannelBandwidth * float64(d.Memory.Channels)
		if v := d.Memory.BandwidthBytesPerCycle; !(v >= lo && v <= maxBandwidth) {
			c.fail("memory.bandwidth_bytes_per_cycle must be in [%v, %v] (%v per channel times memory.channels = %d), got %v",
				lo, maxBandwidth, minChannelBandwidth, d.Memory.Channels, v)
		}
	}

	c.floatIn("data.bytes_per_weight", d.Data.BytesPerWeight, minBytes, maxBytes)
	c.floatIn("data.bytes_per_activation", d.Data.BytesPerActivation, minBytes, maxBytes)

	for _, u := range []struct {
		key string
		u   Unit
	}{{"softmax", d.Softmax}, {"layernorm", d.LayerNorm}, {"gelu", d.GELU}, {"residual", d.Residual}} {
		c.intIn(u.key+".elements_per_cycle", u.u.ElementsPerCycle, 1, maxRate)
		c.intIn(u.key+".latency_cycles", u.u.LatencyCycles, 0, maxLatency)
	}

	c.oneOf("token_drop.selection", string(d.TokenDrop.Selection), string(SelectStreaming), string(SelectBitonic))
	c.intIn("token_drop.scores_per_cycle", d.TokenDrop.ScoresPerCycle, 1, maxRate)
	c.intIn("token_drop.comparators", d.TokenDrop.Comparators, 1, maxRate)
	c.intIn("token_drop.latency_cycles", d.TokenDrop.LatencyCycles, 0, maxLatency)
	c.intIn("token_drop.fusion_macs_per_cycle", d.TokenDrop.FusionMACsPerCycle, 1, maxRate)
	c.intIn("token_drop.repack_elements_per_cycle", d.TokenDrop.RepackElementsPerCycle, 1, maxRate)

	for _, u := range []struct {
		key string
		u   MACUnit
	}{{"patch_embed", d.PatchEmbed}, {"classifier", d.Classifier}} {
		c.intIn(u.key+".macs_per_cycle", u.u.MACsPerCycle, 1, maxRate)
		c.intIn(u.key+".latency_cycles", u.u.LatencyCycles, 0, maxLatency)
	}
	return c.err
}

// checker keeps the first validation failure.
type checker struct{ err error }

func (c *checker) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf(format, args...)
	}
}

func (c *checker) intIn(key string, v, lo, hi int) {
	switch {
	case v < lo:
		c.fail("%s must be >= %d, got %d", key, lo, v)
	case v > hi:
		c.fail("%s must be <= %d, got %d", key, hi, v)
	}
}

// floatIn requires a finite v in [lo, hi].
func (c *checker) floatIn(key string, v, lo, hi float64) {
	if !(v >= lo && v <= hi) { // NaN fails both
		c.fail("%s must be in [%v, %v], got %v", key, lo, hi, v)
	}
}

func (c *checker) oneOf(key, v string, allowed ...string) {
	if slices.Contains(allowed, v) {
		return
	}
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = strconv.Quote(a)
	}
	c.fail("%s must be one of %s, got %q", key, strings.Join(quoted, ", "), v)
}

// Load returns the preset called nameOrPath, or else the description in the
// TOML file at that path. A preset name wins over a file of the same name
// (write ./paper to mean the file).
func Load(nameOrPath string) (Description, error) {
	if d, err := Preset(nameOrPath); err == nil {
		return d, nil
	}
	d, err := LoadFile(nameOrPath)
	if errors.Is(err, fs.ErrNotExist) {
		return Description{}, fmt.Errorf("topology %q: neither a preset (%s) nor an existing file",
			nameOrPath, strings.Join(PresetNames(), ", "))
	}
	return d, err
}

// LoadFile reads and validates the description in the TOML file at path.
func LoadFile(path string) (Description, error) {
	f, err := os.Open(path)
	if err != nil {
		return Description{}, fmt.Errorf("topology %q: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return Description{}, fmt.Errorf("topology %q: %w", path, err)
	}
	return Parse(path, data)
}

// Parse decodes and validates a TOML description; source names it in errors
// and becomes its name unless the file sets one. The file may start from a
// preset with `base = "u250"` and override any keys; without base every key
// must be given. Unknown keys are errors.
func Parse(source string, data []byte) (Description, error) {
	d, err := parse(source, data)
	if err != nil {
		return Description{}, fmt.Errorf("topology %q: %w", source, err)
	}
	return d, nil
}

func parse(source string, data []byte) (Description, error) {
	if len(data) > MaxFileBytes {
		return Description{}, fmt.Errorf("file larger than %d bytes", MaxFileBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return Description{}, errors.New(`file is empty: start it with base = "u250" (or another preset), or write one with -print-topology`)
	}
	// The TOML decoder's time grows faster than quadratically with the depth
	// of dotted keys and nested arrays or inline tables; a description needs
	// a few of each, so bounding their counts bounds the decoding time.
	for _, c := range []struct {
		chars string
		max   int
	}{{".", maxDots}, {"[{", maxBrackets}} {
		if n := countAny(data, c.chars); n > c.max {
			return Description{}, fmt.Errorf("more than %d of the characters %q (%d); a description needs far fewer", c.max, c.chars, n)
		}
	}
	// The TOML decoder copies the text; one string conversion is enough for both passes.
	text := string(data)
	var head struct {
		Base string `toml:"base"`
	}
	if _, err := toml.Decode(text, &head); err != nil {
		return Description{}, oneLine(err)
	}
	var file struct {
		Base string `toml:"base"`
		Description
	}
	if head.Base != "" {
		base, err := Preset(head.Base)
		if err != nil {
			return Description{}, fmt.Errorf("base: %w", err)
		}
		file.Description = base
	}
	md, err := toml.Decode(text, &file)
	if err != nil {
		return Description{}, oneLine(err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		return Description{}, fmt.Errorf("unknown key %q", shorten(undecoded[0].String()))
	}
	// The decoder matches keys case-insensitively; two spellings of one key
	// would then race in map order, so only the documented spelling is accepted.
	for _, k := range md.Keys() {
		if s := k.String(); s != strings.ToLower(s) {
			return Description{}, fmt.Errorf("unknown key %q (keys are lower case)", shorten(s))
		}
	}
	if len(md.Keys()) == 0 {
		return Description{}, errors.New(`file sets no keys (only comments): start it with base = "u250" (or another preset), or write one with -print-topology`)
	}
	if head.Base == "" {
		for _, key := range requiredKeys() {
			if !md.IsDefined(key...) {
				return Description{}, fmt.Errorf("missing key %s: without base = \"PRESET\" every key must be given (-print-topology writes them all)",
					strings.Join(key, "."))
			}
		}
	}
	d := file.Description
	if !md.IsDefined("name") {
		d.Name = source
	}
	if err := d.check(); err != nil {
		return Description{}, err
	}
	return d, nil
}

// requiredKeys lists the TOML keys a description without base must set, in
// the order of the fields: every key but name (which defaults to the
// source) and the optional fifo.depths.
func requiredKeys() [][]string {
	var keys [][]string
	var walk func(t reflect.Type, prefix []string)
	walk = func(t reflect.Type, prefix []string) {
		for f := range t.Fields() {
			tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			key := append(slices.Clone(prefix), tag)
			switch {
			case tag == "" || f.Type.Kind() == reflect.Map || strings.Join(key, ".") == "name":
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, key)
			default:
				keys = append(keys, key)
			}
		}
	}
	walk(reflect.TypeFor[Description](), nil)
	return keys
}

// shorten keeps an error about a key readable when the key is long.
func shorten(key string) string {
	const max = 64
	if len(key) <= max {
		return key
	}
	return key[:max] + "..."
}

func countAny(data []byte, chars string) int {
	n := 0
	for _, c := range []byte(chars) {
		n += bytes.Count(data, []byte{c})
	}
	return n
}

// oneLine flattens a decoder error so that a CLI can print it on one line.
func oneLine(err error) error {
	msg := err.Error()
	if !strings.ContainsAny(msg, "\r\n") {
		return err
	}
	return errors.New(strings.Join(strings.Fields(msg), " "))
}

// WriteTOML writes d as a TOML file that Parse reads back to d, so that a
// user can start from a preset and edit it.
func (d Description) WriteTOML(w io.Writer) error {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# vitflow accelerator description %q; units are in the key names.\n", d.Name)
	fmt.Fprintf(&buf, "# Load it with -topology FILE. fidelity: ideal | detailed; balance: ideal | static | balanced;\n")
	fmt.Fprintf(&buf, "# token_drop.selection: streaming | bitonic. Write base = \"NAME\" to start from a preset instead.\n")
	fmt.Fprintf(&buf, "# A [fifo.depths] table sets single links by name, overriding their class, e.g.\n")
	fmt.Fprintf(&buf, "#   [fifo.depths]\n#   \"mpca->gelu\" = 1\n# Links: %s.\n\n", strings.Join(LinkNames(d.MPCA.H), ", "))
	if err := toml.NewEncoder(&buf).Encode(d); err != nil {
		return fmt.Errorf("topology %q: encode: %w", d.Name, err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}
