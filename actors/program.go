package actors

import (
	"fmt"
	"slices"
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
// run the earliest op goes first, unless that would put more units on the
// loop its results travel on than the program's window allows. So a
// producer runs ahead of its consumer (Q·K^T of later rows while softmax
// works on earlier ones) by up to the window. The window is one number for
// every loop: the smallest that lets the layer's most demanding loop run
// at all (a first pass, which grows a loop's window only when nothing else
// can run, finds it).
//
// The order does not depend on the loops' capacities: they are checked
// against the most units the program puts on each loop, and a loop too
// small is a *LoopError. Deeper FIFOs therefore only take waits away from
// a fixed program and never reorder the MPCA's work, which is why raising
// a depth never slows a run. (A greedy order that ran ahead as far as the
// FIFOs allowed was sometimes slower with more room, as list schedules
// can be; it also left no slack in the FIFOs it filled.)
func NewProgram(m *Model, p *Plan, loops Loops) ([]Step, error) {
	prog, err := BuildProgram(m, p)
	if err != nil {
		return nil, err
	}
	if err := prog.Check(loops); err != nil {
		return nil, err
	}
	return prog.Steps, nil
}

// Program is the MPCA's program for one image and the most units it puts
// on each loop.
type Program struct {
	Steps []Step
	use   [numLoops]loopUse
}

// BuildProgram orders the program as NewProgram does, without checking it
// against the loops' capacities: since the order does not depend on them,
// one program serves every set of FIFO depths that Check accepts.
func BuildProgram(m *Model, p *Plan) (*Program, error) {
	if len(p.Layers) != len(m.Layers) {
		return nil, fmt.Errorf("program: a plan of %d layers for a model of %d", len(p.Layers), len(m.Layers))
	}
	window := [numLoops]int{1, 1, 1, 1}
	needs := opNeeds(p)
	_, grown, _, err := build(m, p, needs, window)
	if err != nil {
		return nil, err
	}
	most := slices.Max(grown[:])
	window = [numLoops]int{most, most, most, most}
	prog, _, use, err := build(m, p, needs, window)
	if err != nil {
		return nil, err
	}
	return &Program{Steps: prog, use: use}, nil
}

// Check returns a *LoopError if a loop cannot hold the units the program
// puts on it.
func (pr *Program) Check(loops Loops) error {
	holds := [numLoops]int{loops.Attention, loops.MLP, loops.Residual, loops.Layer}
	for i, v := range holds {
		if v < 1 {
			return fmt.Errorf("program: %s loop holds %d units", loopNames[i], v)
		}
	}
	for i, h := range holds {
		if u := pr.use[i]; h < u.units {
			return &LoopError{Loop: loopNames[i], Holds: h, Needs: u.units, At: u.at}
		}
	}
	return nil
}

// The loops, in the order of Loops' fields.
const (
	attentionLoop = iota
	mlpLoop
	residualLoop
	layerLoop
	numLoops
	noLoop = -1
)

var loopNames = [numLoops]string{"attention", "MLP", "residual", "layer"}

// LoopError says that a loop out of the MPCA and back cannot hold the units
// that the MPCA's snapshots put on it before it can take any back.
type LoopError struct {
	// Loop is "attention", "MLP", "residual" or "layer" (see Loops).
	Loop string
	// Holds is the loop's capacity; Needs the most units the program puts
	// on it at once, the smallest capacity that runs it.
	Holds, Needs int
	// At names the first snapshot that puts Needs units on the loop.
	At string
}

func (e *LoopError) Error() string {
	return fmt.Sprintf("program: the %s loop holds %d units, the MPCA's snapshots need %d (%s)", e.Loop, e.Holds, e.Needs, e.At)
}

// loopUse is the most units the program puts on one loop, and the first
// snapshot that puts them there.
type loopUse struct {
	units int
	at    string
}

// opNeeds lists, for every snapshot of every op of p, the distinct input
// units it uses first among the op's snapshots (see progOp.needs).
func opNeeds(p *Plan) [][NumOps][][]int32 {
	needs := make([][NumOps][][]int32, len(p.Layers))
	for l := range p.Layers {
		for o := range NumOps {
			pl := &p.Layers[l][o]
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
				needs[l][o] = append(needs[l][o], need)
			}
		}
	}
	return needs
}

// build makes the program within window units out on each loop, growing a
// loop's window when nothing else can run. It returns the program, the
// windows it ended with and how much of each loop it used.
func build(m *Model, p *Plan, needs [][NumOps][][]int32, window [numLoops]int) ([]Step, [numLoops]int, [numLoops]loopUse, error) {
	ops := make([][NumOps]progOp, len(m.Layers))
	total := 0
	for l := range ops {
		for o := range NumOps {
			pl := &p.Layers[l][o]
			ops[l][o] = progOp{plan: pl, done: make([]bool, pl.Units), taken: make([]bool, pl.Units), needs: needs[l][o]}
			total += len(pl.Snapshots)
		}
	}
	b := &builder{m: m, ops: ops, window: window}
	prog := make([]Step, 0, total)
	first := 0 // the lowest layer with an unfinished op
	for len(prog) < total {
		// The earliest ready snapshot within the windows; failing that, the
		// earliest ready one, and its loop's window grows.
		type candidate struct {
			po          *progOp
			at          opRef
			loop, units int // the loop it sends on and what it would hold (onLoop)
		}
		var pick, grow candidate
		for l := first; l < min(first+2, len(ops)) && pick.po == nil; l++ {
			for o := range NumOps {
				po := &ops[l][o]
				if po.finished() || !b.ready(l, o) {
					continue
				}
				c := candidate{po: po, at: opRef{l, o}}
				c.loop, c.units = b.onLoop(l, o)
				if c.loop == noLoop || c.units <= b.window[c.loop] {
					pick = c
					break
				}
				if grow.po == nil {
					grow = c
				}
			}
		}
		if pick.po == nil {
			if grow.po == nil {
				// Nothing is ready: the plan's dependencies are circular,
				// which NewPlan never makes.
				return nil, b.window, b.use, fmt.Errorf("program: no snapshot of layer %d can run", first)
			}
			pick = grow
		}
		if loop, units := pick.loop, pick.units; loop != noLoop {
			b.window[loop] = max(b.window[loop], units)
			if units > b.use[loop].units {
				next := pick.po.next
				b.use[loop] = loopUse{units, fmt.Sprintf("%s snapshot %d completes %d row blocks", pick.at, next, len(pick.po.plan.Snapshots[next].Done))}
			}
		}
		prog = append(prog, Step{Layer: int32(pick.at.layer), Op: pick.at.op, Snapshot: int32(pick.po.next)})
		b.issue(pick.po)
		for first < len(ops) && b.layerFinished(first) {
			first++
		}
	}
	return prog, b.window, b.use, nil
}

type builder struct {
	m      *Model
	ops    [][NumOps]progOp
	window [numLoops]int     // the most units each loop may hold
	use    [numLoops]loopUse // the most units each loop has held
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

// onLoop names the loop op o of layer l sends its units on (noLoop for
// one that ends in a unit taking everything) and how many units would be
// on it, out and not yet taken back, once its next snapshot is issued.
func (b *builder) onLoop(l int, o Op) (loop, units int) {
	var consumer []*progOp
	switch {
	case o == OpQK:
		loop, consumer = attentionLoop, []*progOp{&b.ops[l][OpRowSum], &b.ops[l][OpAV]}
	case o == OpFC1:
		loop, consumer = mlpLoop, []*progOp{&b.ops[l][OpFC2]}
	case o == OpO && !b.m.Layers[l].Drops():
		loop, consumer = residualLoop, []*progOp{&b.ops[l][OpFC1]}
	case o == OpFC2 && l+1 < len(b.ops):
		// Q, K and V read the same rows: the first to take one takes it off the loop.
		n := &b.ops[l+1]
		loop, consumer = layerLoop, []*progOp{&n[OpQ], &n[OpK], &n[OpV]}
	default:
		return noLoop, 0
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
	return loop, out - back
}
