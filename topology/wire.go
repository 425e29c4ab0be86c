package topology

import (
	"fmt"

	"vitflow/actors"
	"vitflow/runtime"
)

// built is one batch's graph of units, kept for reading the results.
type built struct {
	graph      *runtime.Graph
	net        *actors.Net
	recs       []*actors.Recorder
	stages     []actors.Stage // what each actor is, by index
	bodies     []func(*runtime.Ctx) error
	opts       [][]runtime.ActorOption
	mpca       *actors.MPCA
	embed      *actors.PatchEmbed
	tokendrop  *actors.TokenDropper
	classifier *actors.Classifier
}

// wire builds the accelerator's graph for images. The dataflow of one
// encoder layer (=> a FIFO; MPCA = the H CHMs, one shared engine):
//
//	patchembed | residual2 => layernorm1 => MPCA (Q, K, V; then Q·K^T)
//	                          layernorm1 => residual1            (skip: the token buffer)
//	MPCA => softmax => MPCA (row sums, A·V)   softmax => tokendrop (CLS rows)
//	MPCA (W_O) => residual1 => layernorm2 => MPCA (FC1)          (layers keeping every token)
//	               residual1 => residual2                        (skip)
//	               residual1 => tokendrop => layernorm2, residual2 (token dropping layers)
//	MPCA (FC1) => gelu => MPCA (FC2) => residual2 => layernorm1 (next layer) | classifier
//	controller => MPCA (the program)          loader i => MPCA (CHM i's weights)
func (a *Accelerator) wire(images [][]float32) (*built, error) {
	d, ac, m := a.desc, a.config, a.model
	f := d.FIFO
	lat := int64(f.LatencyCycles)
	g, net := runtime.NewGraph(), &actors.Net{}
	bt := &built{graph: g, net: net}
	add := func(name string, stage actors.Stage) int {
		i := net.AddActor(name)
		bt.recs = append(bt.recs, &actors.Recorder{})
		bt.stages = append(bt.stages, stage)
		return i
	}
	ctrl, mpca := add("controller", actors.StageControl), add("mpca", actors.StageMPCA)
	var loaders []int
	var channels [][]int // the CHMs of each memory channel
	if ac.Streamed {
		channels = ac.Memory.ChannelCHMs(ac.Geometry.H)
		for ch := range channels {
			loaders = append(loaders, add(fmt.Sprintf("loader%d", ch), actors.StageMemory))
		}
	}
	embed, ln1, sm, res1, td, ln2, gelu, res2, cls := add("patchembed", actors.StageEmbed), add("layernorm1", actors.StageLayerNorm1),
		add("softmax", actors.StageSoftmax), add("residual1", actors.StageResidual1), add("tokendrop", actors.StageTokenDrop),
		add("layernorm2", actors.StageLayerNorm2), add("gelu", actors.StageGELU), add("residual2", actors.StageResidual2),
		add("classifier", actors.StageClassifier)

	// Pipeline latencies ride on a unit's output links; free units have none.
	pipe := func(c actors.UnitCost) int64 {
		if ac.Free {
			return 0
		}
		return c.Latency
	}
	b := int64(a.block)
	maxTokens, maxHidden := m.Tokens, 0
	for _, L := range m.Layers {
		maxHidden = max(maxHidden, L.FC1.Cols)
	}
	act := int64(d.Data.BytesPerActivation * float64(b)) // bytes of one token row of one value
	rowBytes := func(cols int) int64 { return act * int64(cols) }
	buffer := ceilDiv(maxTokens, a.block) + 1 // the token buffer holds a whole sequence

	var err error
	tile := func(name string, w, r, depth int, pipeline int64, stage actors.Stage, cols int) actors.Link[*actors.Tile] {
		if err != nil {
			return actors.Link[*actors.Tile]{}
		}
		var k actors.Link[*actors.Tile]
		k, err = actors.NewLink[*actors.Tile](g, net, name, w, r, depth, lat, pipeline, stage, rowBytes(cols))
		return k
	}
	dim := m.Dim
	// unit is the common part of the unit that actor i runs, with its record.
	unit := func(i int, c actors.UnitCost) actors.Unit {
		return actors.Unit{Model: m, Block: a.block, Images: len(images), Cost: c, Free: ac.Free, Rec: bt.recs[i]}
	}

	// The MPCA and what feeds it.
	mu := &actors.MPCA{Config: ac, Model: m, Plan: a.plan, Images: len(images), Rec: bt.recs[mpca]}
	mu.Program, err = actors.NewLink[actors.Step](g, net, "controller->mpca", ctrl, mpca, 16, lat, 0, actors.StageControl, 0)
	mu.XN1 = tile("layernorm1->mpca", ln1, mpca, f.Depth("layernorm1->mpca"), pipe(ac.LayerNorm), actors.StageLayerNorm1, dim)
	mu.Probs = tile("softmax->mpca", sm, mpca, f.Depth("softmax->mpca"), pipe(ac.Softmax), actors.StageSoftmax, maxTokens)
	mu.XN2 = tile("layernorm2->mpca", ln2, mpca, f.Depth("layernorm2->mpca"), pipe(ac.LayerNorm), actors.StageLayerNorm2, dim)
	mu.Hidden = tile("gelu->mpca", gelu, mpca, f.Depth("gelu->mpca"), pipe(ac.GELU), actors.StageGELU, maxHidden)
	mu.Scores = tile("mpca->softmax", mpca, sm, f.Depth("mpca->softmax"), 0, actors.StageMPCA, maxTokens)
	mu.O = tile("mpca->residual1", mpca, res1, f.Depth("mpca->residual1"), 0, actors.StageMPCA, dim)
	mu.FC1 = tile("mpca->gelu", mpca, gelu, f.Depth("mpca->gelu"), 0, actors.StageMPCA, maxHidden)
	mu.FC2 = tile("mpca->residual2", mpca, res2, f.Depth("mpca->residual2"), 0, actors.StageMPCA, dim)
	bt.mpca = mu

	pe := &actors.PatchEmbed{Unit: unit(embed, actors.UnitCost{}), MACs: ac.PatchEmbed, Pixels: images}
	pe.Out = tile("patchembed->layernorm1", embed, ln1, f.Depth("patchembed->layernorm1"), pipe(actors.UnitCost{Latency: ac.PatchEmbed.Latency}), actors.StageEmbed, dim)
	bt.embed = pe

	l1 := &actors.LayerNorm1{Unit: unit(ln1, ac.LayerNorm), FromEmbed: pe.Out, ToMPCA: mu.XN1}
	l1.Skip = tile("layernorm1->residual1", ln1, res1, buffer, 0, actors.StageLayerNorm1, dim)

	s := &actors.Softmax{Unit: unit(sm, ac.Softmax), In: mu.Scores, Out: mu.Probs}
	s.CLS = tile("softmax->tokendrop", sm, td, f.Depth("softmax->tokendrop"), pipe(ac.Softmax), actors.StageSoftmax, maxTokens)

	r1 := &actors.Residual1{Unit: unit(res1, ac.Residual), In: mu.O, Skip: l1.Skip}
	r1.ToTokenDrop = tile("residual1->tokendrop", res1, td, f.Depth("residual1->tokendrop"), pipe(ac.Residual), actors.StageResidual1, dim)
	r1.ToLN2 = tile("residual1->layernorm2", res1, ln2, f.Depth("residual1->layernorm2"), pipe(ac.Residual), actors.StageResidual1, dim)
	r1.SkipOut = tile("residual1->residual2", res1, res2, buffer, pipe(ac.Residual), actors.StageResidual1, dim)

	t := &actors.TokenDropper{Unit: unit(td, actors.UnitCost{}), Cost: ac.TokenDrop, CLS: s.CLS, In: r1.ToTokenDrop}
	t.ToLN2 = tile("tokendrop->layernorm2", td, ln2, f.Depth("tokendrop->layernorm2"), 0, actors.StageTokenDrop, dim)
	t.Skip = tile("tokendrop->residual2", td, res2, buffer, 0, actors.StageTokenDrop, dim)
	bt.tokendrop = t

	l2 := &actors.LayerNorm2{Unit: unit(ln2, ac.LayerNorm), FromResidual: r1.ToLN2, FromTokenDrop: t.ToLN2, ToMPCA: mu.XN2}
	gu := &actors.GELU{Unit: unit(gelu, ac.GELU), In: mu.FC1, Out: mu.Hidden}

	r2 := &actors.Residual2{Unit: unit(res2, ac.Residual), In: mu.FC2, FromResidual: r1.SkipOut, FromTokenDrop: t.Skip}
	r2.ToLN1 = tile("residual2->layernorm1", res2, ln1, f.Depth("residual2->layernorm1"), pipe(ac.Residual), actors.StageResidual2, dim)
	r2.ToClassifier = tile("residual2->classifier", res2, cls, f.Depth("residual2->classifier"), pipe(ac.Residual), actors.StageResidual2, dim)
	l1.FromResidual = r2.ToLN1

	cu := &actors.Classifier{Unit: unit(cls, ac.LayerNorm), MACs: ac.Classifier, In: r2.ToClassifier}
	bt.classifier = cu

	c := &actors.Controller{Program: a.program.Steps, Images: len(images), Out: mu.Program, Rec: bt.recs[ctrl]}

	// Weights: loader i streams the blocks of the CHMs on channel i.
	var loaderUnits []*actors.Loader
	if ac.Streamed {
		mu.Weights = make([]actors.Link[actors.WeightBlock], ac.Geometry.H)
		for ch, chms := range channels {
			ld := &actors.Loader{Memory: ac.Memory, Block: a.block, Plan: a.plan, Model: m, Images: len(images), Rec: bt.recs[loaders[ch]], CHMs: chms}
			for _, i := range chms {
				name := weightLink(i)
				if err == nil {
					mu.Weights[i], err = actors.NewLink[actors.WeightBlock](g, net, name, loaders[ch], mpca, f.Depth(name), lat, 0,
						actors.StageMemory, int64(float64(b*b)*d.Data.BytesPerWeight))
				}
				ld.Out = append(ld.Out, mu.Weights[i])
			}
			loaderUnits = append(loaderUnits, ld)
		}
	}
	if err != nil {
		return nil, err
	}

	// Bodies and declared ends, in actor order.
	bt.bodies = make([]func(*runtime.Ctx) error, len(net.Actors))
	bt.opts = make([][]runtime.ActorOption, len(net.Actors))
	bt.bodies[ctrl], bt.bodies[mpca] = c.Run, mu.Run
	for i, ld := range loaderUnits {
		bt.bodies[loaders[i]] = ld.Run
	}
	bt.bodies[embed], bt.bodies[ln1], bt.bodies[sm], bt.bodies[res1] = pe.Run, l1.Run, s.Run, r1.Run
	bt.bodies[td], bt.bodies[ln2], bt.bodies[gelu], bt.bodies[res2], bt.bodies[cls] = t.Run, l2.Run, gu.Run, r2.Run, cu.Run
	ports := make([][2][]runtime.Port, len(net.Actors))
	for i, k := range net.Links {
		p := net.Ports[i]
		ports[k.Writer][1] = append(ports[k.Writer][1], p)
		ports[k.Reader][0] = append(ports[k.Reader][0], p)
	}
	for i := range net.Actors {
		bt.opts[i] = []runtime.ActorOption{runtime.Reads(ports[i][0]...), runtime.Writes(ports[i][1]...)}
	}
	return bt, nil
}
