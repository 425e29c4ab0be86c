package actors

import (
	"errors"
	"fmt"

	"vitflow/kernels"
	"vitflow/runtime"
)

// Unit holds what every streaming unit needs: the model, the tile side,
// the batch size, its cost per element, whether it is free (ideal
// fidelity), and its recorder.
type Unit struct {
	Model  *Model
	Block  int
	Images int
	Cost   UnitCost
	Free   bool
	Rec    *Recorder
}

// rows is the number of row blocks of a sequence of n tokens.
func (u *Unit) rows(n int) int { return ceilDiv(n, u.Block) }

// numeric reports whether the unit computes values: not in a timing-only
// model, where it only moves tiles of the right shape and charges their time.
func (u *Unit) numeric() bool { return !u.Model.TimingOnly }

// layerNorm returns a new tile of t's rows normalised with gain w and bias
// b (without values in a timing-only model).
func (u *Unit) layerNorm(t *Tile, w, b []float32) *Tile {
	xn := &Tile{Image: t.Image, Layer: t.Layer, Unit: t.Unit, Rows: t.Rows, Cols: t.Cols}
	if u.numeric() {
		xn.Data = make([]float32, len(t.Data))
		kernels.LayerNorm(xn.Data, t.Data, w, b, t.Rows, t.Cols, u.Model.LNEps)
	}
	return xn
}

// tile is row block r, nr tokens of cols values, of the sequence x of image
// img in layer l; it has no values when x is nil (a timing-only model).
func (u *Unit) tile(x []float32, img, l, r, nr, cols int) *Tile {
	t := &Tile{Image: int32(img), Layer: int32(l), Unit: int32(r), Rows: nr, Cols: cols}
	if x != nil {
		t.Data = x[r*u.Block*cols : (r*u.Block+nr)*cols]
	}
	return t
}

// charge checks the unit's output tile is finite and works the unit's time
// for it, n real elements: the throughput part; the pipeline latency rides
// on its output links. The time depends on n alone, never on the values,
// so a timing-only run charges the same.
func (u *Unit) charge(ctx *runtime.Ctx, stage Stage, out *Tile, n int) error {
	if err := finite(stage, 0, out); err != nil {
		return err
	}
	if !u.Free && n > 0 {
		u.Rec.workOn(ctx, int64(ceilDiv(n, u.Cost.ElementsPerCycle)), stage, 0, out.Unit)
	}
	return nil
}

// finite fails on a tile that holds a NaN or an infinity, naming the unit
// (and the MPCA's op), the image, the layer and the row block where it first
// appeared.
func finite(stage Stage, op Op, t *Tile) error {
	i := kernels.FirstNonFinite(t.Data)
	if i < 0 {
		return nil
	}
	what := stage.String()
	if stage == StageMPCA {
		what += " " + op.String()
	}
	return fmt.Errorf("image %d layer %d: %s output of unit %d is not finite (%v)", t.Image, t.Layer, what, t.Unit, t.Data[i])
}

// expect fails on a tile of another image or layer than the unit's program
// says comes next: a wiring or ordering bug, not a user's error.
func expect(stage Stage, t *Tile, image, layer int) error {
	if int(t.Image) != image || int(t.Layer) != layer {
		return fmt.Errorf("%s: got a tile of image %d layer %d, want image %d layer %d", stage, t.Image, t.Layer, image, layer)
	}
	return nil
}

// skips holds the tiles of a skip connection, which may be asked for in
// another order than they arrive in.
type skips struct {
	link  Link[*Tile]
	tiles map[int32]*Tile
}

func (s *skips) get(ctx *runtime.Ctx, r *Recorder, unit int32) (*Tile, error) {
	if s.tiles == nil {
		s.tiles = map[int32]*Tile{}
	}
	for s.tiles[unit] == nil {
		t, err := s.link.recv(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("skip connection: %w", err)
		}
		s.tiles[t.Unit] = t
	}
	t := s.tiles[unit]
	delete(s.tiles, unit)
	return t, nil
}

// LayerNorm1 normalises each row block of a layer's input for Q, K and V
// and passes the row block itself on to the first residual add (the token
// buffer's skip connection). Layer 0 reads the patch embedding, the others
// the previous layer's second residual add.
type LayerNorm1 struct {
	Unit
	FromEmbed, FromResidual Link[*Tile]
	ToMPCA, Skip            Link[*Tile]
}

// Run is the unit's actor body.
func (u *LayerNorm1) Run(ctx *runtime.Ctx) error {
	m := u.Model
	for img := range u.Images {
		for l := range m.Layers {
			L := &m.Layers[l]
			in := u.FromResidual
			if l == 0 {
				in = u.FromEmbed
			}
			u.Rec.at(img, l)
			for range u.rows(L.TokensIn) {
				t, err := in.recv(ctx, u.Rec)
				if err != nil {
					return fmt.Errorf("image %d layer %d: %w", img, l, err)
				}
				if err := expect(StageLayerNorm1, t, img, max(l-1, 0)); err != nil {
					return err
				}
				t.Layer = int32(l)
				xn := u.layerNorm(t, L.Norm1W, L.Norm1B)
				if err := u.charge(ctx, StageLayerNorm1, xn, xn.elements()); err != nil {
					return err
				}
				if err := u.ToMPCA.send(ctx, u.Rec, xn); err != nil {
					return err
				}
				if err := u.Skip.send(ctx, u.Rec, t); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Softmax turns each head's row block of scores into probabilities (the
// exponentials, row sums and normalisation of kernels.SoftmaxRows) and
// sends them back to the MPCA; in token dropping layers it also sends each
// head's CLS row to the token dropping module.
type Softmax struct {
	Unit
	In, Out Link[*Tile]
	CLS     Link[*Tile]
}

// Run is the unit's actor body.
func (u *Softmax) Run(ctx *runtime.Ctx) error {
	for img := range u.Images {
		for l := range u.Model.Layers {
			L := &u.Model.Layers[l]
			rows := u.rows(L.TokensIn)
			u.Rec.at(img, l)
			for range L.Heads * rows {
				t, err := u.In.recv(ctx, u.Rec)
				if err != nil {
					return fmt.Errorf("image %d layer %d: %w", img, l, err)
				}
				if err := expect(StageSoftmax, t, img, l); err != nil {
					return err
				}
				if u.numeric() {
					kernels.SoftmaxRows(t.Data, t.Rows, t.Cols)
				}
				if err := u.charge(ctx, StageSoftmax, t, t.elements()); err != nil {
					return err
				}
				var cls *Tile
				if L.Drops() && int(t.Unit)%rows == 0 {
					cls = &Tile{Image: t.Image, Layer: t.Layer, Unit: t.Unit / int32(rows), Rows: 1, Cols: t.Cols}
					if u.numeric() {
						cls.Data = append([]float32(nil), t.Data[:t.Cols]...)
					}
				}
				if err := u.Out.send(ctx, u.Rec, t); err != nil {
					return err
				}
				if cls != nil {
					if err := u.CLS.send(ctx, u.Rec, cls); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// Residual1 adds W_O's output to the layer's input (the skip connection)
// and sends the sum to the token dropping module in layers that drop
// tokens, else to LayerNorm 2 and, as the next skip connection, to the
// second residual add.
type Residual1 struct {
	Unit
	In, Skip           Link[*Tile]
	ToTokenDrop, ToLN2 Link[*Tile]
	SkipOut            Link[*Tile]
	skips              skips
}

// Run is the unit's actor body.
func (u *Residual1) Run(ctx *runtime.Ctx) error {
	u.skips.link = u.Skip
	for img := range u.Images {
		for l := range u.Model.Layers {
			L := &u.Model.Layers[l]
			u.Rec.at(img, l)
			for range u.rows(L.TokensIn) {
				t, err := u.In.recv(ctx, u.Rec)
				if err != nil {
					return fmt.Errorf("image %d layer %d: %w", img, l, err)
				}
				s, err := u.skips.get(ctx, u.Rec, t.Unit)
				if err != nil {
					return err
				}
				if err := errors.Join(expect(StageResidual1, t, img, l), expect(StageResidual1, s, img, l)); err != nil {
					return err
				}
				if u.numeric() {
					kernels.Add(t.Data, t.Data, s.Data)
				}
				if err := u.charge(ctx, StageResidual1, t, t.elements()); err != nil {
					return err
				}
				if L.Drops() {
					err = u.ToTokenDrop.send(ctx, u.Rec, t)
				} else if err = u.ToLN2.send(ctx, u.Rec, t); err == nil {
					err = u.SkipOut.send(ctx, u.Rec, t)
				}
				if err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// TokenDropper is the token dropping module (see docs/DESIGN.md section 3): once it
// has every head's CLS attention row and the whole sequence, it averages
// the rows over the kept heads, keeps the Kept best-scoring tokens, fuses
// the others into one (kernels.DropTokens), re-packs the sequence and
// streams it to LayerNorm 2 and the second residual add. Its time is
// TokenDropCost.Cycles, nothing when free: it depends on how many tokens
// it keeps, never on which.
type TokenDropper struct {
	Unit
	Cost        TokenDropCost
	CLS, In     Link[*Tile]
	ToLN2, Skip Link[*Tile]
	// Kept holds, once Run has returned, the kept tokens' input positions
	// per image and layer (nil for layers that keep every token); in a
	// timing-only model, positions 1 to Layer.Kept (see keep).
	Kept [][][]int
}

// Run is the module's actor body.
func (u *TokenDropper) Run(ctx *runtime.Ctx) error {
	m := u.Model
	d, b := m.Dim, u.Block
	u.Kept = make([][][]int, u.Images)
	for img := range u.Images {
		u.Kept[img] = make([][]int, len(m.Layers))
		for l := range m.Layers {
			L := &m.Layers[l]
			if !L.Drops() {
				continue
			}
			n := L.TokensIn
			if L.Heads < 1 || L.Kept < 1 {
				return fmt.Errorf("image %d layer %d: cannot keep %d of %d tokens over %d heads", img, l, L.Kept, n-1, L.Heads)
			}
			u.Rec.at(img, l)
			cls := make([][]float32, L.Heads)
			for range L.Heads {
				t, err := u.CLS.recv(ctx, u.Rec)
				if err != nil {
					return fmt.Errorf("image %d layer %d: %w", img, l, err)
				}
				if err := expect(StageTokenDrop, t, img, l); err != nil {
					return err
				}
				cls[t.Unit] = t.Data
			}
			var x []float32
			if u.numeric() {
				x = make([]float32, n*d)
			}
			for range u.rows(n) {
				t, err := u.In.recv(ctx, u.Rec)
				if err != nil {
					return fmt.Errorf("image %d layer %d: %w", img, l, err)
				}
				if err := expect(StageTokenDrop, t, img, l); err != nil {
					return err
				}
				if x != nil {
					copy(x[int(t.Unit)*b*d:], t.Data)
				}
			}
			var out []float32
			out, u.Kept[img][l] = u.keep(L, cls, x)
			if !u.Free {
				u.Rec.work(ctx, u.Cost.Cycles(n, L.Kept, d), StageTokenDrop, 0)
			}
			for r := range u.rows(L.TokensOut) {
				t := u.tile(out, img, l, r, min(b, L.TokensOut-r*b), d)
				if err := u.ToLN2.send(ctx, u.Rec, t); err != nil {
					return err
				}
				if err := u.Skip.send(ctx, u.Rec, t); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// keep drops tokens from layer L's sequence x by the CLS rows cls of its
// heads: it returns the new sequence, [CLS, kept..., fused], and the kept
// tokens' input positions. A timing-only model has no scores to rank: it
// keeps the first L.Kept patch tokens, positions 1 to L.Kept, and returns no
// sequence. Only the count is right, and it is all that the module's time
// and the shape of what follows depend on.
func (u *TokenDropper) keep(L *Layer, cls [][]float32, x []float32) ([]float32, []int) {
	if !u.numeric() {
		kept := make([]int, L.Kept)
		for i := range kept {
			kept[i] = i + 1
		}
		return nil, kept
	}
	n, d := L.TokensIn, u.Model.Dim
	// The head average, summed in head order as the reference does.
	scores := make([]float32, n-1)
	for _, row := range cls {
		for j, a := range row[1:n] {
			scores[j] += a
		}
	}
	for j := range scores {
		scores[j] /= float32(L.Heads)
	}
	out := make([]float32, (L.Kept+2)*d)
	return out, kernels.DropTokens(out, x, n, d, scores, L.Kept)
}

// LayerNorm2 normalises each row block after the attention for FC1.
type LayerNorm2 struct {
	Unit
	FromResidual, FromTokenDrop Link[*Tile]
	ToMPCA                      Link[*Tile]
}

// Run is the unit's actor body.
func (u *LayerNorm2) Run(ctx *runtime.Ctx) error {
	m := u.Model
	for img := range u.Images {
		for l := range m.Layers {
			L := &m.Layers[l]
			in := u.FromResidual
			if L.Drops() {
				in = u.FromTokenDrop
			}
			u.Rec.at(img, l)
			for range u.rows(L.TokensOut) {
				t, err := in.recv(ctx, u.Rec)
				if err != nil {
					return fmt.Errorf("image %d layer %d: %w", img, l, err)
				}
				if err := expect(StageLayerNorm2, t, img, l); err != nil {
					return err
				}
				xn := u.layerNorm(t, L.Norm2W, L.Norm2B)
				if err := u.charge(ctx, StageLayerNorm2, xn, xn.elements()); err != nil {
					return err
				}
				if err := u.ToMPCA.send(ctx, u.Rec, xn); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// GELU applies the activation to each row block of FC1's output, in place,
// charging the kept neurons only (the padding to a whole block is zero).
type GELU struct {
	Unit
	In, Out Link[*Tile]
}

// Run is the unit's actor body.
func (u *GELU) Run(ctx *runtime.Ctx) error {
	for img := range u.Images {
		for l := range u.Model.Layers {
			L := &u.Model.Layers[l]
			u.Rec.at(img, l)
			for range u.rows(L.TokensOut) {
				t, err := u.In.recv(ctx, u.Rec)
				if err != nil {
					return fmt.Errorf("image %d layer %d: %w", img, l, err)
				}
				if err := expect(StageGELU, t, img, l); err != nil {
					return err
				}
				if u.numeric() {
					kernels.GELU(t.Data, t.Data)
				}
				if err := u.charge(ctx, StageGELU, t, t.Rows*L.Hidden); err != nil {
					return err
				}
				if err := u.Out.send(ctx, u.Rec, t); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Residual2 adds FC2's output to the attention's (the skip connection from
// the first residual add or the token dropping module) and sends the layer's
// output on: to LayerNorm 1 of the next layer, or to the classifier.
type Residual2 struct {
	Unit
	In                          Link[*Tile]
	FromResidual, FromTokenDrop Link[*Tile]
	ToLN1, ToClassifier         Link[*Tile]
	skips                       [2]skips
}

// Run is the unit's actor body.
func (u *Residual2) Run(ctx *runtime.Ctx) error {
	u.skips[0].link, u.skips[1].link = u.FromResidual, u.FromTokenDrop
	last := len(u.Model.Layers) - 1
	for img := range u.Images {
		for l := range u.Model.Layers {
			L := &u.Model.Layers[l]
			sk := &u.skips[0]
			if L.Drops() {
				sk = &u.skips[1]
			}
			out := u.ToLN1
			if l == last {
				out = u.ToClassifier
			}
			u.Rec.at(img, l)
			for range u.rows(L.TokensOut) {
				t, err := u.In.recv(ctx, u.Rec)
				if err != nil {
					return fmt.Errorf("image %d layer %d: %w", img, l, err)
				}
				s, err := sk.get(ctx, u.Rec, t.Unit)
				if err != nil {
					return err
				}
				if err := errors.Join(expect(StageResidual2, t, img, l), expect(StageResidual2, s, img, l)); err != nil {
					return err
				}
				if u.numeric() {
					kernels.Add(t.Data, t.Data, s.Data)
				}
				if err := u.charge(ctx, StageResidual2, t, t.elements()); err != nil {
					return err
				}
				if err := out.send(ctx, u.Rec, t); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// PatchEmbed is the patch embedding engine: a dense Patches × PatchLen by
// PatchLen × Dim product, then the class tokens and the position
// embeddings, streamed to LayerNorm 1 a row block at a time, each costing
// its patches' MACs.
type PatchEmbed struct {
	Unit
	MACs MACCost
	// Pixels holds the Images images; a timing-only model reads none (nil).
	Pixels [][]float32
	Out    Link[*Tile]
	// Start holds, once Run has returned, when each image entered.
	Start []int64
}

// Run is the engine's actor body.
func (u *PatchEmbed) Run(ctx *runtime.Ctx) error {
	m := u.Model
	d, b := m.Dim, u.Block
	grid, plen := m.ImageSize/m.PatchSize, m.InChans*m.PatchSize*m.PatchSize
	prefix := m.Tokens - grid*grid // CLS, and DIST if any
	u.Start = make([]int64, u.Images)
	for img := range u.Images {
		u.Start[img] = ctx.Now()
		u.Rec.at(img, -1)
		var x []float32
		if u.numeric() {
			var err error
			if x, err = u.embed(img); err != nil {
				return err
			}
		}
		for r := range u.rows(m.Tokens) {
			nr := min(b, m.Tokens-r*b)
			patchRows := min(r*b+nr, m.Tokens) - max(r*b, prefix)
			if !u.Free && patchRows > 0 {
				u.Rec.workOn(ctx, int64(ceilDiv(patchRows*plen*d, u.MACs.MACsPerCycle)), StageEmbed, 0, int32(r))
			}
			if err := u.Out.send(ctx, u.Rec, u.tile(x, img, 0, r, nr, d)); err != nil {
				return err
			}
		}
	}
	return nil
}

// embed is image img's sequence entering the first layer: its patches'
// embeddings after the class tokens, plus the position embeddings.
func (u *PatchEmbed) embed(img int) ([]float32, error) {
	m := u.Model
	ps, side, d := m.PatchSize, m.ImageSize, m.Dim
	grid, plen := side/ps, m.InChans*ps*ps
	np := grid * grid
	pixels := u.Pixels[img]
	if len(pixels) != m.InChans*side*side {
		return nil, fmt.Errorf("image %d has %d values, want %d", img, len(pixels), m.InChans*side*side)
	}
	patches := make([]float32, np*plen)
	kernels.Patches(patches, pixels, m.InChans, side, ps)
	emb := make([]float32, np*d)
	kernels.GemmParallel(0, false, false, np, d, plen, 1, patches, plen, m.PatchW, d, 0, emb, d)
	kernels.AddBias(emb, m.PatchB, np, d)
	x := make([]float32, 0, m.Tokens*d)
	x = append(x, m.ClsToken...)
	x = append(x, m.DistToken...)
	x = append(x, emb...)
	if len(x) != m.Tokens*d || len(m.PosEmbed) != len(x) {
		return nil, fmt.Errorf("%d tokens of %d, position embeddings for %d values", len(x)/d, d, len(m.PosEmbed))
	}
	kernels.Add(x, x, m.PosEmbed)
	if i := kernels.FirstNonFinite(x); i >= 0 {
		return nil, fmt.Errorf("image %d: patch embedding output is not finite (%v)", img, x[i])
	}
	return x, nil
}

// Classifier applies the final LayerNorm and the linear head to the CLS
// token, as soon as the row block holding it arrives, and drains the rest
// of the sequence. Its time is the LayerNorm of one row and
// MACs.Cycles(Dim*NumClasses), nothing when free.
type Classifier struct {
	Unit
	MACs MACCost
	In   Link[*Tile]
	// Logits and End hold, once Run has returned, each image's logits and
	// when they left.
	Logits [][]float32
	End    []int64
}

// Run is the engine's actor body.
func (u *Classifier) Run(ctx *runtime.Ctx) error {
	m := u.Model
	d := m.Dim
	last := &m.Layers[len(m.Layers)-1]
	u.Logits, u.End = make([][]float32, u.Images), make([]int64, u.Images)
	for img := range u.Images {
		u.Rec.at(img, -1)
		for range u.rows(last.TokensOut) {
			t, err := u.In.recv(ctx, u.Rec)
			if err != nil {
				return fmt.Errorf("image %d: %w", img, err)
			}
			if err := expect(StageClassifier, t, img, len(m.Layers)-1); err != nil {
				return err
			}
			if t.Unit != 0 {
				continue
			}
			var logits []float32 // none in a timing-only model
			if u.numeric() {
				cls := make([]float32, d)
				kernels.LayerNorm(cls, t.Data[:d], m.NormW, m.NormB, 1, d, m.LNEps)
				logits = make([]float32, m.NumClasses)
				kernels.Gemm(false, false, 1, m.NumClasses, d, 1, cls, d, m.HeadW, m.NumClasses, 0, logits, m.NumClasses)
				kernels.AddBias(logits, m.HeadB, 1, m.NumClasses)
			}
			if !u.Free {
				u.Rec.work(ctx, u.Cost.Cycles(d)+u.MACs.Cycles(d*m.NumClasses), StageClassifier, 0)
			}
			u.Logits[img], u.End[img] = logits, ctx.Now()
		}
	}
	return nil
}

// Loader streams weight blocks from one off-chip memory channel to the
// CHMs on that channel, in weightOrder. A block takes Memory.BlockCycles of
// channel time, and every op's stream starts with the memory latency (a
// new burst). It runs ahead of the CHMs as far as their weight FIFOs let it.
type Loader struct {
	Memory Memory
	Block  int
	Plan   *Plan
	Model  *Model
	Images int
	// CHMs are the CHMs on this channel and Out their weight FIFOs.
	CHMs []int
	Out  []Link[WeightBlock]
	Rec  *Recorder
}

// Run is the loader's actor body.
func (u *Loader) Run(ctx *runtime.Ctx) error {
	per := u.Memory.BlockCycles(u.Block)
	var owed float64 // channel time not yet charged, below one cycle
	order := newWeightOrder(u.Plan, u.Model, u.Images, u.CHMs)
	for {
		k, blk, burst, ok := order.next()
		if !ok {
			return nil
		}
		u.Rec.at(int(blk.Image), int(blk.Layer))
		if burst {
			u.Rec.work(ctx, u.Memory.Latency, StageMemory, blk.Op)
		}
		owed += per
		n := int64(owed)
		owed -= float64(n)
		u.Rec.work(ctx, n, StageMemory, blk.Op)
		if err := u.Out[k].send(ctx, u.Rec, blk); err != nil {
			return err
		}
	}
}

// weightOrder is the order in which one channel streams weight blocks: for
// every image, layer and linear op, each CHM's non-zero blocks in its
// ColOrder, the CHMs' block-columns interleaved. The MPCA takes the blocks
// of a channel in the same order, from whichever CHM's FIFO they are in, so
// that a CHM that needs its next column never waits behind another CHM's
// full FIFO that nothing would drain.
type weightOrder struct {
	plan          *Plan
	model         *Model
	images        int
	chms          []int
	img, layer    int
	op            Op
	cursor        []int // per CHM: position in its ColOrder
	turn          int   // the CHM whose column is next
	col, idx, end int32 // the column being streamed, its next block and its end
	started       bool  // the op's burst has begun
	k             int   // the CHM of the column being streamed
}

func newWeightOrder(p *Plan, m *Model, images int, chms []int) *weightOrder {
	return &weightOrder{plan: p, model: m, images: images, chms: chms, cursor: make([]int, len(chms)), op: -1}
}

// next returns the next block, the index in chms of its CHM, whether it
// starts a new burst (the op's first block), and false at the end.
func (w *weightOrder) next() (int, WeightBlock, bool, bool) {
	for w.idx >= w.end {
		if !w.nextColumn() {
			return 0, WeightBlock{}, false, false
		}
	}
	blk := WeightBlock{Image: int32(w.img), Layer: int32(w.layer), Op: w.op, Col: w.col, Index: w.idx}
	w.idx++
	burst := !w.started
	w.started = true
	return w.k, blk, burst, true
}

// nextColumn moves to the next column with blocks, or to the next op.
func (w *weightOrder) nextColumn() bool {
	for {
		if w.op >= 0 {
			plan := &w.plan.Layers[w.layer][w.op]
			for range w.chms {
				k := w.turn
				w.turn = (w.turn + 1) % len(w.chms)
				order := plan.ColOrder[w.chms[k]]
				if w.cursor[k] < len(order) {
					c := order[w.cursor[k]]
					w.cursor[k]++
					wt := w.model.Layers[w.layer].Weight(w.op)
					w.k, w.col, w.idx, w.end = k, c, wt.ColStart[c], wt.ColStart[c+1]
					return true
				}
			}
		}
		// The op is done: the next linear op, layer or image.
		for {
			w.op++
			if w.op >= NumOps {
				w.op, w.layer = 0, w.layer+1
				if w.layer >= len(w.model.Layers) {
					w.layer, w.img = 0, w.img+1
				}
			}
			if w.img >= w.images {
				return false
			}
			if w.op.Linear() {
				break
			}
		}
		clear(w.cursor)
		w.turn, w.started = 0, false
	}
}

// Controller issues the MPCA's program for every image: which snapshot of
// which op runs next (the blocks of each PE are the plan's, which the MPCA
// holds). It carries no data and waits for nothing but room in the command
// FIFO.
type Controller struct {
	Program []Step
	Images  int
	Out     Link[Step]
	Rec     *Recorder
}

// Run is the controller's actor body.
func (u *Controller) Run(ctx *runtime.Ctx) error {
	for img := range u.Images {
		for _, st := range u.Program {
			st.Image = int32(img)
			u.Rec.at(img, int(st.Layer))
			if err := u.Out.send(ctx, u.Rec, st); err != nil {
				return err
			}
		}
	}
	return nil
}
