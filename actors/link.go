package actors

import (
	"fmt"

	"vitflow/runtime"
)

// Stage is what a unit computes: the word reports and the critical path
// use for each unit's work.
type Stage int

// The stages of the accelerator, in the order data meets them.
const (
	StageControl Stage = iota
	StageMemory        // weight loaders streaming from off-chip memory
	StageEmbed         // patch embedding
	StageLayerNorm1
	StageMPCA
	StageSoftmax
	StageResidual1
	StageTokenDrop
	StageLayerNorm2
	StageGELU
	StageResidual2
	StageClassifier
	NumStages
)

var stageNames = [...]string{"control", "memory", "patchembed", "layernorm1", "mpca", "softmax", "residual1",
	"tokendrop", "layernorm2", "gelu", "residual2", "classifier"}

func (s Stage) String() string {
	if s >= 0 && s < NumStages {
		return stageNames[s]
	}
	return fmt.Sprintf("Stage(%d)", int(s))
}

// Tile is the element of every activation link: a row block of Rows
// tokens (b, or fewer in a sequence's last block) by Cols values of one
// image and layer. Unit is the row block's index, or head*rows+row on the
// attention loop. On chip it occupies b*Cols activations whatever Rows is.
type Tile struct {
	Image, Layer int32
	Unit         int32
	Rows, Cols   int
	Data         []float32 // Rows × Cols; nil in a timing-only model (Model.TimingOnly)
}

// elements is the number of values the tile stands for, with or without Data.
func (t *Tile) elements() int { return t.Rows * t.Cols }

// WeightBlock is one non-zero weight block on its way from memory to a
// CHM: block Index of the packed matrix of op Op, in block-column Col.
type WeightBlock struct {
	Image, Layer int32
	Op           Op
	Col, Index   int32
}

// Net names the actors and links of a built accelerator, so that a run's
// logs can be read back: who wrote each link and with what latency.
type Net struct {
	Actors []string
	Links  []NetLink
	// Ports are the links' FIFOs, for declaring actors' ends.
	Ports []runtime.Port
}

// NetLink is one FIFO of the accelerator.
type NetLink struct {
	Name           string
	Writer, Reader int
	// Depth is the FIFO's capacity; Latency the link's own latency.
	Depth   int
	Latency int64
	// Pipeline is the writer's pipeline latency, which the link carries
	// (a unit takes its next tile while the last one drains); Stage is the
	// writer's.
	Pipeline int64
	Stage    Stage
	// Bytes is the on-chip size of one element.
	Bytes int64
}

// AddActor registers an actor and returns its index.
func (n *Net) AddActor(name string) int {
	n.Actors = append(n.Actors, name)
	return len(n.Actors) - 1
}

// Link is a FIFO of the accelerator with its index in the Net.
type Link[T any] struct {
	F  *runtime.FIFO[T]
	ID int32
}

// NewLink adds a FIFO named name from writer to reader to g and n; its
// runtime latency is latency+pipeline.
func NewLink[T any](g *runtime.Graph, n *Net, name string, writer, reader int, depth int, latency, pipeline int64, stage Stage, bytes int64) (Link[T], error) {
	f, err := runtime.NewFIFO[T](g, name, depth, int(latency+pipeline))
	if err != nil {
		return Link[T]{}, err
	}
	n.Links = append(n.Links, NetLink{Name: name, Writer: writer, Reader: reader, Depth: depth, Latency: latency,
		Pipeline: pipeline, Stage: stage, Bytes: bytes})
	n.Ports = append(n.Ports, f)
	return Link[T]{F: f, ID: int32(len(n.Links) - 1)}, nil
}

// SegmentKind says how an actor's clock moved.
type SegmentKind uint8

const (
	// Busy: the actor worked (Work).
	Busy SegmentKind = iota
	// Starved: it waited for an element to become visible on FIFO Link.
	Starved
	// Blocked: it waited for space in the full FIFO Link.
	Blocked
)

// Segment is one move of an actor's clock from Start to End.
type Segment struct {
	Start, End int64
	Kind       SegmentKind
	Stage      Stage
	Op         Op    // the MPCA op, for StageMPCA
	Link       int32 // Starved and Blocked
	Image      int32
	Layer      int32 // -1 outside the encoder layers
	// Unit is the row block (Tile.Unit) a Busy segment worked on, -1 when
	// it worked on none in particular; traces name it.
	Unit int32
}

// Recorder keeps one actor's segments; a nil Recorder keeps nothing.
type Recorder struct {
	Segments []Segment
	// what the actor is working on, stamped on its waits
	image, layer int32
}

// at sets the image and layer the next waits are stamped with.
func (r *Recorder) at(image, layer int) {
	if r != nil {
		r.image, r.layer = int32(image), int32(layer)
	}
}

func (r *Recorder) add(s Segment) {
	if r == nil || s.End <= s.Start {
		return
	}
	s.Image, s.Layer = r.image, r.layer
	r.Segments = append(r.Segments, s)
}

// work advances ctx by n busy cycles spent on stage (and op).
func (r *Recorder) work(ctx *runtime.Ctx, n int64, stage Stage, op Op) {
	r.workOn(ctx, n, stage, op, -1)
}

// workOn is work on one row block, unit.
func (r *Recorder) workOn(ctx *runtime.Ctx, n int64, stage Stage, op Op, unit int32) {
	if n <= 0 {
		return
	}
	t := ctx.Now()
	label := stage.String()
	if stage == StageMPCA {
		label = op.String() // the MPCA's busy time by op, in the statistics and the trace
	}
	ctx.Work(n, label)
	r.add(Segment{Start: t, End: t + n, Kind: Busy, Stage: stage, Op: op, Unit: unit})
}

func (k Link[T]) recv(ctx *runtime.Ctx, r *Recorder) (T, error) {
	t := ctx.Now()
	v, err := k.F.Recv(ctx)
	r.starved(ctx, t, k.ID)
	return v, err
}

// recvAt receives and returns the element's visible time too.
func (k Link[T]) recvAt(ctx *runtime.Ctx, r *Recorder) (T, runtime.Tick, error) {
	t := ctx.Now()
	v, vis, err := k.F.RecvTick(ctx)
	r.starved(ctx, t, k.ID)
	return v, vis, err
}

// starved records the wait of a receive on link that began at t.
func (r *Recorder) starved(ctx *runtime.Ctx, t int64, link int32) {
	r.add(Segment{Start: t, End: ctx.Now(), Kind: Starved, Link: link})
}

func (k Link[T]) send(ctx *runtime.Ctx, r *Recorder, v T) error {
	t := ctx.Now()
	err := k.F.Send(ctx, v)
	r.add(Segment{Start: t, End: ctx.Now(), Kind: Blocked, Link: k.ID})
	return err
}
