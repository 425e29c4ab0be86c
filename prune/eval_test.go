package prune

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestLowAccuracyNote(t *testing.T) {
	tests := []struct {
		name                string
		correct, n, classes int
		oneShot             bool
		want                string
	}{
		{"6% of 10 classes, one-shot", 6, 100, 10, true,
			"note: accuracy 6.0% (6/100) is below twice chance (20.0% for 10 classes): the model predicts little better than a guess; one-shot magnitude pruning at this density destroyed it: raise the density or fine-prune with go run ./cmd/train prune (prune/TRAINING.md)"},
		{"19% of 10 classes, trained masks", 19, 100, 10, false,
			"note: accuracy 19.0% (19/100) is below twice chance (20.0% for 10 classes): the model predicts little better than a guess"},
		{"exactly twice chance", 20, 100, 10, true, ""},
		{"good model", 98, 100, 10, true, ""},
		{"1000 classes, 0.1%", 1, 1000, 1000, false,
			"note: accuracy 0.1% (1/1000) is below twice chance (0.2% for 1000 classes): the model predicts little better than a guess"},
		{"1000 classes, 1%", 10, 1000, 1000, false, ""},
		{"no images", 0, 0, 10, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, LowAccuracyNote(tt.correct, tt.n, tt.classes, tt.oneShot))
			assert.Equal(t, tt.want != "", LowAccuracy(tt.correct, tt.n, tt.classes))
		})
	}
}
