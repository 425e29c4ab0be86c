package prune

import (
	"fmt"
	"runtime"

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

// ReferenceCorrect runs the reference forward pass of c on every image of ds,
// images spread over GOMAXPROCS goroutines, and reports which are classified right.
func ReferenceCorrect(c *vit.Compacted, ds *Dataset) ([]bool, error) {
	right := make([]bool, len(ds.Images))
	errs := make([]error, len(ds.Images))
	const chunk = 100
	runShards(runtime.GOMAXPROCS(0), (len(ds.Images)+chunk-1)/chunk, func(_, s int) {
		for i := s * chunk; i < min((s+1)*chunk, len(ds.Images)); i++ {
			logits, _, err := c.Forward(ds.Images[i])
			if err != nil {
				errs[i] = fmt.Errorf("test image %d: %w", i, err)
				continue
			}
			right[i] = kernels.Argmax(logits) == ds.Labels[i]
		}
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return right, nil
}
