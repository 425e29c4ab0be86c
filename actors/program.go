package actors

import (
	"fmt"
	"strings"
)

// Step is one command of the MPCA's program: run snapshot Snapshot of op
// Op of layer Layer of image Image.
type Step struct {
	Image    int32
	Layer    int32
	Op       Op
	Snapshot int32
}

// Loops are the capacities, in output units, of the four dataflow loops
// that leave the MPCA and come back to it: the elements the FIFOs of a loop
// can hold plus one in the hands of each unit on it. The MPCA must never
// have more units out on a loop than it holds, or it would wait on a full
// FIFO for a unit it has not yet taken back: a deadlock.
type Loops struct {
	// Attention: Q·K^T scores -> softmax -> probabilities -> row sums and A·V.
	Attention int
	// MLP: FC1 -> GELU -> FC2.
	MLP int
	// Residual: W_O -> residual add -> LayerNorm -> FC1, in layers that keep
	// every token (the token dropping module takes a whole sequence).
	Residual int
	// Layer: FC2 -> residual add -> LayerNorm -> Q, K and V of the next layer.
	Layer int
}

// opRef names one op of one layer.
type opRef struct {
	layer int
	op    Op
}

func (r opRef) String() string { return fmt.Sprintf("layer %d %s", r.layer, r.op) }

// progOp is the program builder's state of one op.
type progOp struct {
	plan  *OpPlan
	next  int    // next snapshot to issue
	done  []bool // units complete in the snapshots issued so far
	ndone int
	// needs[k] are the distinct input units snapshot k uses first among
	// the op's snapshots (linear ops: rows; row sums and A·V: probability units).
	needs [][]int32
	taken []bool // input units used by issued snapshots
}

func (p *progOp) finished() bool { return p.next == len(p.plan.Snapshots) }

// NewProgram orders the snapshots of every op of one image into the MPCA's
// program. Data dependencies decide what may run (Q·K^T after all of K,
// A·V after all of V and the probabilities of its rows, W_O after the
// attention of its rows, FC1 after LayerNorm of its rows, which in a token
// dropping layer means after all of W_O), and among the snapshots that may
// run the earliest op goes first, unless the loop its results travel on is
// full. So a producer runs ahead of its consumer (Q·K^T of later rows while
// softmax works on earlier ones) exactly as far as the FIFOs of the loop
// let it, and deeper FIFOs give more overlap.
func NewProgram(m *Model, p *Plan, loops Loops) ([]Step, error) {
	if len(p.Layers) != len(m.Layers) {
		return nil, fmt.Errorf("program: a plan of %d layers for a model of %d", len(p.Layers), len(m.Layers))
	}
	for _, c := range []struct {
		name string
		v    int
	}{{"attention", loops.Attention}, {"MLP", loops.MLP}, {"residual", loops.Residual}, {"layer", loops.Layer}} {
		if c.v < 1 {
			return nil, fmt.Errorf("program: %s loop holds %d units", c.name, c.v)
		}
	}
	ops := make([][NumOps]progOp, len(m.Layers))
	total := 0
	for l := range ops {
		for o := range NumOps {
			pl := &p.Layers[l][o]
			po := &ops[l][o]
			po.plan, po.done = pl, make([]bool, pl.Units)
			po.taken = make([]bool, pl.Units)
			seen := make([]bool, pl.Units)
			for _, s := range pl.Snapshots {
				var need []int32
				add := func(u int32) {
					if !seen[u] {
						seen[u] = true
						need = append(need, u)
					}
				}
				for _, b := range s.Blocks {
					add(b.Unit)
				}
				for _, u := range s.Done {
					add(u)
				}
				po.needs = append(po.needs, need)
			}
			total += len(pl.Snapshots)
		}
	}
	b := &builder{m: m, ops: ops, loops: loops}
	prog := make([]Step, 0, total)
	first := 0 // the lowest layer with an unfinished op
	for len(prog) < total {
		issued := false
		for l := first; l < min(first+2, len(ops)) && !issued; l++ {
			for o := range NumOps {
				po := &ops[l][o]
				if po.finished() || !b.ready(l, o) || !b.room(l, o) {
					continue
				}
				prog = append(prog, Step{Layer: int32(l), Op: o, Snapshot: int32(po.next)})
				b.issue(po)
				issued = true
				break
			}
		}
		if !issued {
			return nil, b.stuck(first)
		}
		for first < len(ops) && b.layerFinished(first) {
			first++
		}
	}
	return prog, nil
}

type builder struct {
	m     *Model
	ops   [][NumOps]progOp
	loops Loops
}

func (b *builder) layerFinished(l int) bool {
	for o := range NumOps {
		if !b.ops[l][o].finished() {
			return false
		}
	}
	return true
}

func (b *builder) issue(po *progOp) {
	k := po.next
	for _, u := range po.needs[k] {
		po.taken[u] = true
	}
	for _, u := range po.plan.Snapshots[k].Done {
		po.done[u] = true
		po.ndone++
	}
	po.next++
}

// ready reports whether the next snapshot of op o of layer l has its inputs.
func (b *builder) ready(l int, o Op) bool {
	po := &b.ops[l][o]
	L := &b.m.Layers[l]
	all := func(o Op) bool { p := &b.ops[l][o]; return p.ndone == len(p.done) }
	need := po.needs[po.next]
	doneAll := func(from *progOp) bool {
		for _, u := range need {
			if !from.done[u] {
				return false
			}
		}
		return true
	}
	switch o {
	case OpQ, OpK, OpV:
		return l == 0 || doneAll(&b.ops[l-1][OpFC2])
	case OpQK:
		return all(OpQ) && all(OpK)
	case OpRowSum:
		return doneAll(&b.ops[l][OpQK])
	case OpAV:
		return all(OpV) && doneAll(&b.ops[l][OpQK])
	case OpO:
		rows := po.plan.Rows
		for _, r := range need {
			for h := range L.Heads {
				u := h*rows + int(r)
				if !b.ops[l][OpAV].done[u] || !b.ops[l][OpRowSum].done[u] {
					return false
				}
			}
		}
		return true
	case OpFC1:
		if L.Drops() {
			return all(OpO)
		}
		return doneAll(&b.ops[l][OpO])
	case OpFC2:
		return doneAll(&b.ops[l][OpFC1])
	}
	return false
}

// room reports whether the units the next snapshot of op o completes fit
// on the loop they leave the MPCA by.
func (b *builder) room(l int, o Op) bool {
	var consumer []*progOp
	var capacity int
	switch {
	case o == OpQK:
		consumer, capacity = []*progOp{&b.ops[l][OpRowSum], &b.ops[l][OpAV]}, b.loops.Attention
	case o == OpFC1:
		consumer, capacity = []*progOp{&b.ops[l][OpFC2]}, b.loops.MLP
	case o == OpO && !b.m.Layers[l].Drops():
		consumer, capacity = []*progOp{&b.ops[l][OpFC1]}, b.loops.Residual
	case o == OpFC2 && l+1 < len(b.ops):
		// Q, K and V read the same rows: the first to take one takes it off the loop.
		n := &b.ops[l+1]
		consumer, capacity = []*progOp{&n[OpQ], &n[OpK], &n[OpV]}, b.loops.Layer
	default:
		return true // the loop ends in a unit that takes everything
	}
	po := &b.ops[l][o]
	out := po.ndone + len(po.plan.Snapshots[po.next].Done)
	back := 0
	for u := range po.done {
		for _, c := range consumer {
			if u < len(c.taken) && c.taken[u] {
				back++
				break
			}
		}
	}
	return out-back <= capacity
}

// stuck explains why no snapshot can be issued: the loops are too small
// for the snapshots that would have to fit in them.
func (b *builder) stuck(first int) error {
	var waiting []string
	for l := first; l < min(first+2, len(b.ops)); l++ {
		for o := range NumOps {
			po := &b.ops[l][o]
			if po.finished() {
				continue
			}
			why := "waits for its inputs"
			if b.ready(l, o) {
				why = fmt.Sprintf("would complete %d more units on a full loop", len(po.plan.Snapshots[po.next].Done))
			}
			waiting = append(waiting, fmt.Sprintf("%s snapshot %d %s", opRef{l, o}, po.next, why))
		}
	}
	return fmt.Errorf("program: the FIFO loops are too shallow for the MPCA's snapshots (attention %d, MLP %d, residual %d, layer %d units): %s; deepen the FIFOs between the MPCA and the special-function units",
		b.loops.Attention, b.loops.MLP, b.loops.Residual, b.loops.Layer, strings.Join(waiting, "; "))
}
