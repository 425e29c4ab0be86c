package runtime

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// source sends n elements, doing Work(perElem) before each Send.
func source(f *FIFO[int], n int, perElem int64) func(*Ctx) error {
	return func(ctx *Ctx) error {
		for i := range n {
			ctx.Work(perElem, "produce")
			if err := f.Send(ctx, i); err != nil {
				return err
			}
		}
		return nil
	}
}

// stage receives until in is closed, doing Work(perElem) after each Recv and
// then forwarding the element to out (if not nil).
func stage(in, out *FIFO[int], perElem int64, label string) func(*Ctx) error {
	return func(ctx *Ctx) error {
		for {
			v, err := in.Recv(ctx)
			if errors.Is(err, ErrClosed) {
				return nil
			}
			if err != nil {
				return err
			}
			ctx.Work(perElem, label)
			if out != nil {
				if err := out.Send(ctx, v); err != nil {
					return err
				}
			}
		}
	}
}

func TestSmoke(t *testing.T) {
	g := NewGraph()
	f, err := NewFIFO[int](g, "f", 1, 1)
	require.NoError(t, err)
	g.AddActor("p", source(f, 10, 3), Writes(f))
	g.AddActor("c", stage(f, nil, 5, "consume"), Reads(f))
	s, err := g.Run(context.Background(), Options{})
	require.NoError(t, err)
	assert.Equal(t, int64(54), s.Makespan)
	t.Logf("%+v", s)
}
