package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/BurntSushi/toml"

	"vitflow/prune"
	"vitflow/report"
	"vitflow/topology"
)

// maxShownName is the most runes of a user's name (a topology name, a path)
// the text report shows.
const maxShownName = 120

// printable makes a string a user supplied safe to show on a terminal:
// control characters (newlines, escape sequences, bidirectional overrides)
// and invalid UTF-8 are shown escaped, as Go would quote them.
func printable(s string) string {
	var b strings.Builder
	for s != "" {
		r, size := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[0])
		case r == ' ' || unicode.IsGraphic(r) && !unicode.Is(unicode.Bidi_Control, r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
		s = s[size:]
	}
	return b.String()
}

// shownName is a user's name (a topology name, a path) as the text report
// shows it: printable, and cut after maxShownName runes with "...".
func shownName(s string) string {
	p := printable(s)
	if utf8.RuneCountInString(p) <= maxShownName {
		return p
	}
	return string([]rune(p)[:maxShownName]) + "..."
}

// textSafe returns a copy of rep whose user-supplied names are printable,
// for the text report and the SVG chart (JSON escapes them itself).
func textSafe(rep *report.Report) *report.Report {
	safe := *rep
	safe.Topology = shownName(rep.Topology)
	safe.Weights = shownName(rep.Weights)
	return &safe
}

// writeTopologyJSON writes d as JSON with the TOML file's keys, for
// -print-topology -json: the TOML encoding decoded into maps and encoded
// again, so that both name every field the same way.
func writeTopologyJSON(w io.Writer, d topology.Description) error {
	var buf bytes.Buffer
	if err := d.WriteTOML(&buf); err != nil {
		return err
	}
	var m map[string]any
	if _, err := toml.Decode(buf.String(), &m); err != nil {
		return fmt.Errorf("topology %q: %w", d.Name, err)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(m)
}

// notes are the one-line remarks a run prints on stderr about flags with no
// effect and results that deserve a word.
func notes(opt *options, m *model, in *inputs, rep *report.Report) []string {
	var out []string
	if opt.set["seed"] && !seedUsed(m, in) {
		out = append(out, fmt.Sprintf("note: -seed %d has no effect: the weights are %s and the images %s", opt.seed, weightsKind(m), in.desc))
	}
	if rep.TraceCut > 0 {
		out = append(out, fmt.Sprintf("note: the trace stops at cycle %d of %d: it reached its cap of %d events; raise -trace-events or trace fewer images or layers (-trace-images, -trace-layers) to see the rest", rep.TraceCut, rep.CyclesTotal, opt.traceOpt.MaxEvents))
	}
	if opt.set["balance"] && rep.Fidelity == string(topology.FidelityIdeal) && opt.balance != string(topology.PolicyIdeal) {
		out = append(out, fmt.Sprintf("note: -balance %s has no effect in ideal fidelity (topology %s): the ideal policy runs; use a detailed topology such as u250", opt.balance, rep.Topology))
	}
	// Random weights are no better than a guess by design.
	if rep.Accuracy != nil && m.weightsDesc != "random" {
		correct := 0
		for i, top := range rep.Top1 {
			if top == rep.Labels[i] {
				correct++
			}
		}
		if note := prune.LowAccuracyNote(correct, len(rep.Top1), m.cfg.NumClasses, m.pruningDesc.Source == "magnitude"); note != "" {
			out = append(out, note)
		}
	}
	return out
}

// seedUsed reports whether -seed chose anything: random weights or random images.
func seedUsed(m *model, in *inputs) bool {
	return m.weightsDesc == "random" || in.random
}

func weightsKind(m *model) string {
	if m.weightsDesc == "embedded" {
		return "embedded"
	}
	return "from " + strconv.Quote(m.weightsDesc)
}
