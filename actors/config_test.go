package actors

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCosts(t *testing.T) {
	g := Geometry{T: 12, C: 2, H: 4, P: 8}
	assert.Equal(t, 24, g.PEs())
	assert.Equal(t, int64(4*16), g.PairCycles(16)) // ceil(16/8)^2 * 16
	assert.Equal(t, int64(32*16), g.PairCycles(32))
	assert.Equal(t, int64(4), Geometry{P: 8}.PairCycles(4)) // a 4x4 block on an 8x8 array: one pass of 4

	u := UnitCost{ElementsPerCycle: 32, Latency: 40}
	assert.Equal(t, int64(0), u.Cycles(0))
	assert.Equal(t, int64(1+40), u.Cycles(1))
	assert.Equal(t, int64(2376+40), u.Cycles(198*384))

	m := MACCost{MACsPerCycle: 6144, Latency: 64}
	assert.Equal(t, int64(0), m.Cycles(0))
	assert.Equal(t, int64(9408+64), m.Cycles(196*768*384))

	for _, tc := range []struct {
		name         string
		cost         TokenDropCost
		n, kept, dim int
		want         int64
	}{
		// 16 + (197 scores at 1 a cycle + 138 drained) + ceil(59*384/64) + ceil(138*384/64)
		{"streaming", TokenDropCost{Selection: Streaming, ScoresPerCycle: 1, Latency: 16, FusionMACsPerCycle: 64, RepackElementsPerCycle: 64},
			198, 138, 384, 16 + 197 + 138 + 354 + 828},
		// 197 scores -> P=256, log2 8: 36 stages of 128 compare-exchanges on 64 comparators.
		{"bitonic", TokenDropCost{Selection: Bitonic, Comparators: 64, Latency: 16, FusionMACsPerCycle: 64, RepackElementsPerCycle: 64},
			198, 138, 384, 16 + 36*2 + 354 + 828},
		{"bitonic two scores", TokenDropCost{Selection: Bitonic, Comparators: 1, FusionMACsPerCycle: 1, RepackElementsPerCycle: 1},
			3, 1, 1, 1 + 1 + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.cost.Cycles(tc.n, tc.kept, tc.dim))
		})
	}

	mem := Memory{BytesPerCycle: 204.8, Channels: 4, BytesPerWeight: 2}
	assert.InDelta(t, 16*16*2*4/204.8, mem.BlockCycles(16), 1e-12)
}

func TestConfigValidate(t *testing.T) {
	good := Config{Geometry: Geometry{T: 1, C: 1, H: 1, P: 1}, Block: 8, Free: true}
	assert.NoError(t, good.Validate())
	for _, tc := range []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"geometry", func(c *Config) { c.Geometry.T = 0 }, "geometry"},
		{"block", func(c *Config) { c.Block = 0 }, "block size"},
		{"policy", func(c *Config) { c.Policy = 7 }, "policy"},
		{"memory", func(c *Config) { c.Streamed = true }, "memory"},
		{"unit", func(c *Config) { c.Free = false }, "softmax"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.edit(&c)
			assert.ErrorContains(t, c.Validate(), tc.want)
		})
	}
}
