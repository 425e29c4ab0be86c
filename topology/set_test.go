package topology

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSet(t *testing.T) {
	for _, tc := range []struct {
		key, value string
		check      func(d Description) bool
		err        string
	}{
		{key: "mpca.h", value: "8", check: func(d Description) bool { return d.MPCA.H == 8 }},
		{key: "clock_mhz", value: "250.5", check: func(d Description) bool { return d.ClockMHz == 250.5 }},
		{key: "memory.weights_on_chip", value: "true", check: func(d Description) bool { return d.Memory.WeightsOnChip }},
		{key: "balance", value: "static", check: func(d Description) bool { return d.Balance == PolicyStatic }},
		{key: "token_drop.selection", value: "bitonic", check: func(d Description) bool { return d.TokenDrop.Selection == SelectBitonic }},
		{key: "fifo.depths.mpca->gelu", value: "3", check: func(d Description) bool { return d.FIFO.Depth("mpca->gelu") == 3 }},
		{key: "mpca.h", value: "2.5", err: `mpca.h: "2.5" is not an integer`},
		{key: "clock_mhz", value: "fast", err: "is not a number"},
		{key: "memory.weights_on_chip", value: "yes please", err: "is not true or false"},
		{key: "fifo.depths.mpca->gelu", value: "x", err: "is not an integer"},
		{key: "mpca", value: "1", err: `unknown topology key "mpca"`},
		{key: "mpca.h.x", value: "1", err: "unknown topology key"},
		{key: "name", value: "x", err: "unknown topology key"},
		{key: "MPCA.H", value: "1", err: "unknown topology key"},
	} {
		d, err := Preset("u250")
		require.NoError(t, err)
		err = d.Set(tc.key, tc.value)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, tc.key)
			continue
		}
		require.NoError(t, err, tc.key)
		assert.True(t, tc.check(d), tc.key)
		assert.True(t, IsKey(tc.key), tc.key)
	}
	d, _ := Preset("u250")
	for _, k := range Keys(d.MPCA.H) {
		assert.True(t, IsKey(k), k)
	}
	assert.Len(t, Keys(4), len(requiredKeys())+len(LinkNames(4)))
}

func TestEstimateResources(t *testing.T) {
	d, err := Preset("u250")
	require.NoError(t, err)
	links := []LinkInfo{{Bytes: 512}, {Bytes: 4096}, {Bytes: 4097}, {Bytes: 32 << 10}, {Bytes: 100 << 10}}
	r := EstimateResources(d, links, 1000)
	// 6,144 16-bit MACs, one slice each; softmax 64 + layernorm 32 + GELU
	// 2*64 + fusion 64 = 288 more.
	assert.Equal(t, Resources{DSPs: 6144 + 288, MPCADSPs: 6144, BRAM36: 1 + 2, URAMs: 1 + 4,
		FIFOBytes: 512 + 4096 + 4097 + 32<<10 + 100<<10, OnChipBytes: 512 + 4096 + 4097 + 32<<10 + 100<<10}, r)

	d.Memory.WeightsOnChip = true
	d.Data.BytesPerWeight, d.Data.BytesPerActivation = 1, 1
	r = EstimateResources(d, nil, 100_000)
	assert.Equal(t, 3072, r.MPCADSPs, "two 8-bit multiplies share a slice")
	d.Data.BytesPerActivation = 2
	assert.Equal(t, 6144, EstimateResources(d, nil, 0).MPCADSPs, "an 8-bit weight times a 16-bit activation is a 16-bit multiply")
	d.Data.BytesPerActivation = 4
	r = EstimateResources(d, nil, 100_000)
	assert.Equal(t, 6144*4+288*4, r.DSPs, "a 32-bit multiply takes 2x2 slices")
	assert.Equal(t, int64(100_000), r.WeightBytes)
	assert.Equal(t, 4, r.URAMs, "100,000 bytes of weights in 32 KiB UltraRAMs")
	assert.Equal(t, int64(100_000), r.OnChipBytes)
}
