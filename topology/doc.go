// Package topology describes the modelled accelerator: its description (a
// human-editable TOML file or a built-in preset, every field validated) and
// the analytical latency estimator of the paper's authors (PAPER.md section 6).
package topology
