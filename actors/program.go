package actors

import (
	"fmt"
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
// let it, and deeper FIFOs give more overlap. A loop too small for the
// units one snapshot completes is a *LoopError.
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
	prog, stuck, err := build(m, p, loops)
	if err != nil || stuck == nil {
		return prog, err
	}
	// Find the smallest capacity of the stuck loop that gets past it.
	lo, hi := *stuck.loop(&loops)+1, 1<<24
	for lo < hi {
		mid := lo + (hi-lo)/2
		l := loops
		*stuck.loop(&l) = mid
		if _, again, _ := build(m, p, l); again != nil && again.Loop == stuck.Loop {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	stuck.Needs = lo
	return nil, stuck
}

// LoopError says that a loop out of the MPCA and back cannot hold the units
// that the MPCA's snapshots put on it before it can take any back.
type LoopError struct {
	// Loop is "attention", "MLP", "residual" or "layer" (see Loops).
	Loop string
	// Holds is the loop's capacity; Needs the smallest at which this loop
	// no longer keeps the program from being built.
	Holds, Needs int
	// At names the snapshot that could not be issued.
	At string
}

func (e *LoopError) Error() string {
	return fmt.Sprintf("program: the %s loop holds %d units, the MPCA's snapshots need %d (%s)", e.Loop, e.Holds, e.Needs, e.At)
}

func (e *LoopError) loop(l *Loops) *int {
	switch e.Loop {
	case "attention":
		return &l.Attention
	case "MLP":
		return &l.MLP
	case "residual":
		return &l.Residual
	}
	return &l.Layer
}

// build runs the program builder; it returns a LoopError (without Needs)
// when a full loop keeps every ready snapshot from being issued.
func build(m *Model, p *Plan, loops Loops) ([]Step, *LoopError, error) {
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
				if po.finished() || !b.ready(l, o) {
					continue
				}
				if _, room := b.loopOf(l, o); !room {
					continue
				}
				prog = append(prog, Step{Layer: int32(l), Op: o, Snapshot: int32(po.next)})
				b.issue(po)
				issued = true
				break
			}
		}
		if !issued {
			stuck, err := b.stuck(first)
			return nil, stuck, err
		}
		for first < len(ops) && b.layerFinished(first) {
			first++
		}
	}
	return prog, nil, nil
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

// loopOf names the loop op o of layer l sends its units on ("" for one
// that ends in a unit taking everything) and whether the next snapshot's
// units fit on it.
func (b *builder) loopOf(l int, o Op) (string, bool) {
	var consumer []*progOp
	var capacity int
	var name string
	switch {
	case o == OpQK:
		name, consumer, capacity = "attention", []*progOp{&b.ops[l][OpRowSum], &b.ops[l][OpAV]}, b.loops.Attention
	case o == OpFC1:
		name, consumer, capacity = "MLP", []*progOp{&b.ops[l][OpFC2]}, b.loops.MLP
	case o == OpO && !b.m.Layers[l].Drops():
		name, consumer, capacity = "residual", []*progOp{&b.ops[l][OpFC1]}, b.loops.Residual
	case o == OpFC2 && l+1 < len(b.ops):
		// Q, K and V read the same rows: the first to take one takes it off the loop.
		n := &b.ops[l+1]
		name, consumer, capacity = "layer", []*progOp{&n[OpQ], &n[OpK], &n[OpV]}, b.loops.Layer
	default:
		return "", true
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
	return name, out-back <= capacity
}

// stuck names the first loop that keeps a ready snapshot from being issued.
func (b *builder) stuck(first int) (*LoopError, error) {
	for l := first; l < min(first+2, len(b.ops)); l++ {
		for o := range NumOps {
			po := &b.ops[l][o]
			if po.finished() || !b.ready(l, o) {
				continue
			}
			if name, ok := b.loopOf(l, o); !ok {
				e := &LoopError{Loop: name,
					At: fmt.Sprintf("%s snapshot %d completes %d row blocks", opRef{l, o}, po.next, len(po.plan.Snapshots[po.next].Done))}
				e.Holds = *e.loop(&b.loops)
				return e, nil
			}
		}
	}
	// No loop is full and nothing is ready: the plan's dependencies are
	// circular, which NewPlan never makes.
	return nil, fmt.Errorf("program: no snapshot of layer %d can run", first)
}
