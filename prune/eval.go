package prune

import (
	"fmt"

	"vitflow/kernels"
	"vitflow/vit"
)

// Metadata keys under which the trained models record their pruning and
// their accuracy (measured with the reference forward pass).
const (
	MetaPruning       = vit.PruningMetadataKey          // vit.EncodePruning JSON
	MetaTestAccuracy  = "vitflow.test_accuracy"         // top-1 on the 10,000 MNIST test images, e.g. "0.9871"
	MetaTestCorrect   = "vitflow.test_correct"          // correct out of the 10,000
	MetaSubsetCorrect = "vitflow.test_correct_first500" // correct out of the first SubsetImages
)

// SubsetImages is the size of the fixed test subset (the first images of the
// MNIST test set) whose accuracy the models record for quick checks.
const SubsetImages = 500

// ReferenceCorrect runs the reference forward pass of c on every image of
// ds in batches (vit.Compacted.ForwardBatch, on c.Workers goroutines) of
// 5,000 tokens, a hundred mnist-tiny images, and reports which are
// classified right.
func ReferenceCorrect(c *vit.Compacted, ds *Dataset) ([]bool, error) {
	right := make([]bool, len(ds.Images))
	batch := max(1, 5000/c.Weights.Config.Tokens()) // activations of a few MB a layer, whatever the model
	for lo := 0; lo < len(ds.Images); lo += batch {
		hi := min(lo+batch, len(ds.Images))
		logits, _, err := c.ForwardBatch(ds.Images[lo:hi])
		if err != nil {
			// Name the image, as a forward pass of it alone does.
			for i := lo; i < hi; i++ {
				if _, _, err := c.Forward(ds.Images[i]); err != nil {
					return nil, fmt.Errorf("test image %d: %w", i, err)
				}
			}
			return nil, err
		}
		for i, l := range logits {
			right[lo+i] = kernels.Argmax(l) == ds.Labels[lo+i]
		}
	}
	return right, nil
}

// LowAccuracy reports whether correct of n predictions over classes classes
// are below twice chance (2/classes): a model that good is no better than a
// guess, the usual sign that one-shot pruning destroyed it. With no images
// or classes it is false.
func LowAccuracy(correct, n, classes int) bool {
	return n > 0 && classes > 0 && float64(correct)*float64(classes) < 2*float64(n)
}

// LowAccuracyNote is the one-line note a command prints when LowAccuracy
// holds, "" otherwise; oneShot adds what to do about magnitude masks.
func LowAccuracyNote(correct, n, classes int, oneShot bool) string {
	if !LowAccuracy(correct, n, classes) {
		return ""
	}
	note := fmt.Sprintf("note: accuracy %.1f%% (%d/%d) is below twice chance (%.1f%% for %d classes): the model predicts little better than a guess",
		100*float64(correct)/float64(n), correct, n, 200/float64(classes), classes)
	if oneShot {
		note += "; one-shot magnitude pruning at this density destroyed it: raise the density or fine-prune with go run ./cmd/train prune (prune/TRAINING.md)"
	}
	return note
}
