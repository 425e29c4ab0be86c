package prune

import (
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"vitflow/kernels"
	"vitflow/vit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// smallConfig is a ViT small enough to train for hundreds of steps in a unit
// test: 16 patches of 7×7, two layers of two 16-wide heads, so 16×16 blocks
// tile every attention matrix (4 per matrix).
func smallConfig() vit.Config {
	return vit.Config{Name: "mnist-small", ImageSize: 28, PatchSize: 7, InChans: 1, Dim: 32, Depth: 2, Heads: 2,
		MLPHidden: 64, NumClasses: 10, LNEps: 1e-6, Mean: []float32{0.1307}, Std: []float32{0.3081}}
}

var mnistOnce = sync.OnceValues(func() (*Dataset, error) {
	train, _, err := vit.LoadMNIST()
	if err != nil {
		return nil, err
	}
	return MNIST(train, smallConfig(), 1024), nil
})

func smallMNIST(t *testing.T) *Dataset {
	t.Helper()
	ds, err := mnistOnce()
	require.NoError(t, err)
	return ds
}

func smallDense() Options {
	o := DenseOptions()
	o.Epochs, o.BatchSize, o.ShardSize, o.LR, o.WarmupEpochs = 5, 16, 8, 4e-3, 0.5
	return o
}

func smallPrune() Options {
	o := PruneOptions(0.5, 0.5, []int{0, 1})
	o.Epochs, o.BatchSize, o.ShardSize, o.LR = 3, 16, 8, 1e-3
	o.WarmupEpochs, o.PruneWarmupEpochs, o.PruneCooldownEpochs = 0.25, 0.5, 1
	return o
}

// trainSmall trains a fresh small model densely and returns it with the
// per-epoch mean losses.
func trainSmall(t *testing.T, ds *Dataset, opt Options) (*vit.Weights, []float64) {
	t.Helper()
	tr, err := NewTrainer(InitWeights(smallConfig(), 5), nil, ds, opt)
	require.NoError(t, err)
	var losses []float64
	for tr.Epoch() < opt.Epochs {
		loss, _ := tr.TrainEpoch(nil)
		losses = append(losses, loss)
	}
	return tr.Weights(), losses
}

type denseRun struct {
	w      *vit.Weights
	losses []float64
}

// smallDenseRun trains the small model once (at GOMAXPROCS as the test runs) for the tests that need it.
var smallDenseRun = sync.OnceValue(func() denseRun {
	ds, err := mnistOnce()
	if err != nil {
		panic(err)
	}
	tr, err := NewTrainer(InitWeights(smallConfig(), 5), nil, ds, smallDense())
	if err != nil {
		panic(err)
	}
	var r denseRun
	for tr.Epoch() < tr.opt.Epochs {
		loss, _ := tr.TrainEpoch(nil)
		r.losses = append(r.losses, loss)
	}
	r.w = tr.Weights()
	return r
})

// TestTrainingIsSeededAndDeterministic trains 320 steps on 1,024 MNIST
// images: the loss must fall, and a second run, on one core, must give
// bit-identical weights.
func TestTrainingIsSeededAndDeterministic(t *testing.T) {
	ds := smallMNIST(t)
	opt := smallDense()
	run := smallDenseRun()
	w1, losses := run.w, run.losses
	t.Logf("epoch losses %v", losses)
	assert.Less(t, losses[len(losses)-1], 0.5*losses[0], "loss did not fall")
	assert.Greater(t, Accuracy(w1, nil, ds), 0.75, "training accuracy")

	prev := runtime.GOMAXPROCS(1)
	w2, _ := trainSmall(t, ds, opt)
	runtime.GOMAXPROCS(prev)
	assert.Equal(t, w1, w2, "weights differ between runs on 2 and 1 cores")
}

// TestSimultaneousPruning fine-prunes a trained small model with learned
// masks, token dropping and distillation, and checks the result.
func TestSimultaneousPruning(t *testing.T) {
	ds := smallMNIST(t)
	dense := smallDenseRun().w
	denseAcc := Accuracy(dense, nil, ds)
	opt := smallPrune()
	tr, err := NewTrainer(Masked(dense, nil), dense, ds, opt)
	require.NoError(t, err)
	var densities []float64
	for tr.Epoch() < opt.Epochs {
		tr.TrainEpoch(func(p Progress) { densities = append(densities, p.Density) })
	}
	assert.Equal(t, 1.0, densities[0], "density during the pruning warm-up")
	assert.Equal(t, 0.5, densities[len(densities)-1], "final density")
	assert.Equal(t, 0.5, tr.density(tr.step))
	for i := 1; i < len(densities); i++ {
		require.LessOrEqual(t, densities[i], densities[i-1], "density rose at step %d", i)
	}
	p := tr.Pruning()
	require.NoError(t, p.Validate(smallConfig()))
	assert.Equal(t, 0.5, p.Keep)
	assert.Equal(t, []int{0, 1}, p.TDLayers)
	for _, m := range p.Layers {
		for _, mask := range [][]bool{m.Q, m.K, m.V, m.Proj} {
			assert.Equal(t, 2, count(mask))
		}
		assert.Equal(t, 32, count(m.Neurons))
	}
	w := tr.PrunedWeights()
	acc := Accuracy(w, p, ds)
	oneShot, err := Magnitude(dense, opt.Block, opt.Density)
	require.NoError(t, err)
	oneShot.Keep, oneShot.TDLayers = opt.Keep, opt.TDLayers
	oneShotAcc := Accuracy(dense, oneShot, ds)
	t.Logf("dense %.3f, one-shot %.3f, fine-pruned %.3f", denseAcc, oneShotAcc, acc)
	assert.Greater(t, acc, oneShotAcc+0.1, "fine-pruning recovered little over one-shot magnitude pruning")
	// The saved form (pruned entries zero) runs the same through the reference.
	c, err := w.Compact(p)
	require.NoError(t, err)
	right, err := ReferenceCorrect(c, &Dataset{Images: ds.Images[:200], Labels: ds.Labels[:200]})
	require.NoError(t, err)
	logits := Logits(w, p, &Dataset{Images: ds.Images[:200], Labels: ds.Labels[:200]})
	for i, ok := range right {
		assert.Equal(t, ok, kernels.Argmax(logits[i*10:(i+1)*10]) == ds.Labels[i], "image %d", i)
	}
}

// TestCheckpointResume checks that stopping after an epoch, saving and
// resuming gives exactly the weights of an uninterrupted run.
func TestCheckpointResume(t *testing.T) {
	ds := smallMNIST(t)
	opt := smallPrune()
	opt.Epochs, opt.PruneCooldownEpochs = 2, 0.5
	dense := vit.RandomWeights(smallConfig(), 9)
	straight, err := NewTrainer(Masked(dense, nil), dense, ds, opt)
	require.NoError(t, err)
	straight.TrainEpoch(nil)
	straight.TrainEpoch(nil)

	path := filepath.Join(t.TempDir(), "run.ckpt")
	first, err := NewTrainer(Masked(dense, nil), dense, ds, opt)
	require.NoError(t, err)
	first.TrainEpoch(nil)
	require.NoError(t, first.SaveCheckpoint(path))
	resumed, err := ResumeTrainer(path, dense, ds, opt)
	require.NoError(t, err)
	assert.Equal(t, 1, resumed.Epoch())
	resumed.TrainEpoch(nil)
	assert.Equal(t, straight.Weights(), resumed.Weights())
	assert.Equal(t, straight.scores, resumed.scores)

	other := opt
	other.Keep = 0.7
	_, err = ResumeTrainer(path, dense, ds, other)
	assert.ErrorContains(t, err, "written with settings")
	_, err = ResumeTrainer(filepath.Join(t.TempDir(), "missing"), dense, ds, opt)
	assert.ErrorContains(t, err, "resume")
}

func TestNewTrainerErrors(t *testing.T) {
	cfg := smallConfig()
	ds := &Dataset{Images: randomImages(cfg, 32, 1), Labels: make([]int, 32)}
	w := InitWeights(cfg, 1)
	other := cfg
	other.NumClasses = 3
	for _, tc := range []struct {
		name    string
		edit    func(*Options)
		teacher *vit.Weights
		ds      *Dataset
		want    string
	}{
		{"no epochs", func(o *Options) { o.Epochs = 0 }, w, ds, "epochs 0"},
		{"batch larger than data", func(o *Options) { o.BatchSize = 64 }, w, ds, "need at least one batch of 64"},
		{"labels missing", nil, w, &Dataset{Images: ds.Images, Labels: ds.Labels[:3]}, "32 images with 3 labels"},
		{"no teacher", nil, nil, ds, "distillation needs a teacher"},
		{"teacher of another task", nil, vit.RandomWeights(other, 1), ds, "into 3 classes"},
		{"bad score init", func(o *Options) { o.ScoreInit = "random" }, w, ds, `score initialisation "random"`},
		{"bad block", func(o *Options) { o.Block = 5 }, w, ds, "block size 5"},
		{"td layer", func(o *Options) { o.TDLayers = []int{2} }, w, ds, "token-dropping layer 2 is outside 0..1"},
		{"keep keeps no token", func(o *Options) { o.Keep = 1e-11 }, w, ds, "keep rate 1e-11 keeps none of the 16 tokens after CLS entering token-dropping layer 0"},
		{"td layer twice", func(o *Options) { o.TDLayers = []int{1, 1} }, w, ds, "token-dropping layer 1 listed twice"},
		{"schedule", func(o *Options) { o.PruneCooldownEpochs = 3 }, w, ds, "do not fit in 3 epochs"},
		{"temperature", func(o *Options) { o.Temperature = 0 }, w, ds, "temperature 0"},
		{"learning rate", func(o *Options) { o.LR = -1 }, w, ds, "learning rate -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := smallPrune()
			if tc.edit != nil {
				tc.edit(&opt)
			}
			_, err := NewTrainer(InitWeights(cfg, 2), tc.teacher, tc.ds, opt)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
