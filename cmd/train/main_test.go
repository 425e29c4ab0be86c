package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestBadUsage checks that bad command lines fail before any work, as usage
// errors (exit 2) with a one-line message.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestBadUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "usage: train"},
		{"unknown command", []string{"fly"}, `unknown command "fly"`},
		{"missing out", []string{"dense"}, "-out is required"},
		{"missing from", []string{"prune", "-out", "x"}, "-from is required"},
		{"unknown flag", []string{"dense", "-out", "x", "-density", "0.5"}, "flag provided but not defined: -density"},
		{"bad number", []string{"dense", "-out", "x", "-epochs", "many"}, `invalid value "many" for flag -epochs`},
		{"zero epochs", []string{"dense", "-out", "x", "-epochs", "0"}, "epochs 0 must be positive"},
		{"bad decay", []string{"dense", "-out", "x", "-decay", "step"}, `decay "step" is neither cosine nor linear`},
		{"bad td", []string{"prune", "-out", "x", "-from", "y", "-td", "0,a"}, `-td "0,a": "a" is not a layer number`},
		{"td out of range", []string{"prune", "-out", "x", "-from", "y", "-td", "0,4"}, "token-dropping layer 4 is outside 0..3"},
		{"density", []string{"prune", "-out", "x", "-from", "y", "-density", "1.5"}, "density 1.5 is outside (0, 1]"},
		{"keep", []string{"prune", "-out", "x", "-from", "y", "-keep", "0"}, "keep rate 0 is outside (0, 1]"},
		{"keep keeps no token", []string{"prune", "-out", "x", "-from", "y", "-keep", "1e-11"}, "keep rate 1e-11 keeps none of the 49 tokens after CLS entering token-dropping layer 0"},
		{"oneshot keep keeps no token", []string{"oneshot", "-out", "x", "-from", "y", "-keep", "1e-11"}, "keep rate 1e-11 keeps none of the 49 tokens"},
		{"oneshot keep 0", []string{"oneshot", "-out", "x", "-from", "y", "-keep", "0"}, "keep rate 0 not in (0, 1]"},
		{"oneshot td out of range", []string{"oneshot", "-out", "x", "-from", "y", "-td", "7"}, "token-dropping layer 7 outside 0..3"},
		{"block", []string{"prune", "-out", "x", "-from", "y", "-block", "12"}, "block size 12 must divide dim 64 and head dim 16"},
		{"cool-down too long", []string{"prune", "-out", "x", "-from", "y", "-prune-cooldown", "9"}, "do not fit in 8 epochs"},
		{"model", []string{"dense", "-out", "x", "-model", "resnet"}, `unknown model "resnet"`},
		{"stray argument", []string{"eval", "-model", "m", "extra"}, `unexpected argument "extra"`},
		{"eval without model", []string{"eval"}, "-model is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(tc.args, &stdout, &stderr)
			require.Error(t, err)
			var u usageError
			assert.True(t, errors.As(err, &u), "not a usage error: %v", err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "\n")
			assert.Empty(t, stdout.String())
		})
	}
}

func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run([]string{"prune", "-h"}, &stdout, &stderr)
	assert.ErrorIs(t, err, flag.ErrHelp)
	for _, f := range []string{"-density", "-keep", "-td", "-no-distill", "-magnitude-masks", "-resume"} {
		assert.Contains(t, stderr.String(), f)
	}
	assert.True(t, strings.HasPrefix(stderr.String(), "Usage of train prune"))
}
