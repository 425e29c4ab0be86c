package prune

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"

	"vitflow/internal/safefile"
	"vitflow/vit"
)

// checkpointVersion changes whenever the checkpoint's content changes meaning.
const checkpointVersion = 1

// checkpoint is everything a run needs to resume bit-identically after a
// completed epoch: the settings, the weights and scores, and the optimiser state.
type checkpoint struct {
	Version int
	Options Options
	Epoch   int
	Step    int
	Weights *vit.Weights
	Scores  []layerScores
	AdamT   int
	M, V    [][]float32
}

// SaveCheckpoint writes the trainer's state to path. A regular file (the
// previous checkpoint) is replaced atomically, so an interruption leaves it
// intact; a symlink, named pipe or device is written through, never replaced
// (package safefile).
func (t *Trainer) SaveCheckpoint(path string) error {
	ck := checkpoint{Version: checkpointVersion, Options: t.opt, Epoch: t.epoch, Step: t.step, Weights: t.w,
		Scores: t.scores, AdamT: t.adam.t, M: t.adam.m, V: t.adam.v}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&ck); err != nil {
		return fmt.Errorf("save checkpoint %q: %w", path, err)
	}
	err := safefile.Write(path, func(w io.Writer) error {
		_, err := w.Write(buf.Bytes())
		return err
	})
	if err != nil {
		return fmt.Errorf("save checkpoint %q: %w", path, err)
	}
	return nil
}

// maxCheckpointBytes bounds what ResumeTrainer reads; mnist-tiny's are ~3.5 MB.
const maxCheckpointBytes = 256 << 20

// decodeCheckpoint parses a checkpoint and checks what does not depend on the run.
func decodeCheckpoint(raw []byte) (*checkpoint, error) {
	var ck checkpoint
	if err := gob.NewDecoder(bytes.NewReader(raw)).Decode(&ck); err != nil {
		return nil, fmt.Errorf("not a training checkpoint: %w", err)
	}
	if ck.Version != checkpointVersion {
		return nil, fmt.Errorf("checkpoint version %d, this trainer writes %d", ck.Version, checkpointVersion)
	}
	if ck.Weights == nil {
		return nil, errors.New("no weights")
	}
	if err := ck.Weights.Validate(); err != nil {
		return nil, err
	}
	return &ck, nil
}

// ResumeTrainer rebuilds the trainer saved at path. opt must equal the
// options the checkpoint was written with, so a resumed run cannot silently
// change its settings; train and teacher must be the same data and teacher.
func ResumeTrainer(path string, teacher *vit.Weights, train *Dataset, opt Options) (*Trainer, error) {
	fail := func(err error) (*Trainer, error) { return nil, fmt.Errorf("resume from %q: %w", path, err) }
	if err := safefile.CheckRegular(path); err != nil {
		return nil, fmt.Errorf("resume: %w", err) // a named pipe would block
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("resume: %w", err)
	}
	if st.Size() > maxCheckpointBytes {
		return fail(fmt.Errorf("%d bytes exceed the limit %d", st.Size(), maxCheckpointBytes))
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return fail(err)
	}
	ck, err := decodeCheckpoint(raw)
	if err != nil {
		return fail(err)
	}
	if !reflect.DeepEqual(ck.Options, opt) {
		return fail(fmt.Errorf("written with settings %+v, not %+v", ck.Options, opt))
	}
	t, err := NewTrainer(ck.Weights, teacher, train, opt)
	if err != nil {
		return fail(err)
	}
	if ck.Epoch < 0 || ck.Epoch > opt.Epochs || ck.Step != ck.Epoch*t.StepsPerEpoch() || ck.AdamT != ck.Step {
		return fail(fmt.Errorf("epoch %d, step %d and optimiser step %d disagree", ck.Epoch, ck.Step, ck.AdamT))
	}
	if (ck.Scores == nil) != (t.scores == nil) || len(ck.Scores) != len(t.scores) {
		return fail(errors.New("mask scores do not fit the settings"))
	}
	for i := range t.scores {
		dst, src := t.scores[i].tensors(), ck.Scores[i].tensors()
		for j := range dst {
			if len(dst[j]) != len(src[j]) {
				return fail(fmt.Errorf("layer %d: %d scores, want %d", i, len(src[j]), len(dst[j])))
			}
			copy(dst[j], src[j])
		}
	}
	if len(ck.M) != len(t.adam.m) || len(ck.V) != len(t.adam.v) {
		return fail(fmt.Errorf("optimiser state has %d tensors, want %d", len(ck.M), len(t.adam.m)))
	}
	for i := range t.adam.m {
		if len(ck.M[i]) != len(t.adam.m[i]) || len(ck.V[i]) != len(t.adam.v[i]) {
			return fail(fmt.Errorf("optimiser tensor %d has the wrong size", i))
		}
		copy(t.adam.m[i], ck.M[i])
		copy(t.adam.v[i], ck.V[i])
	}
	t.adam.t, t.step, t.epoch = ck.AdamT, ck.Step, ck.Epoch
	return t, nil
}
