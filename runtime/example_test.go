package runtime_test

import (
	"context"
	"errors"
	"fmt"

	"vitflow/runtime"
)

// A producer of one element per 3 cycles feeds a consumer of one per 5
// through a FIFO of capacity 2 and latency 1 (see TestProducerConsumer for
// the timeline; the FIFO is full during [12,14) and six 4-cycle spans from
// 15 on: 26 of 54 cycles).
func Example() {
	g := runtime.NewGraph()
	ab, err := runtime.NewFIFO[int](g, "ab", 2, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	g.AddActor("producer", func(ctx *runtime.Ctx) error {
		for i := range 10 {
			ctx.Work(3, "produce")
			if err := ab.Send(ctx, i); err != nil {
				return err
			}
		}
		return nil
	}, runtime.Writes(ab))
	sum := 0
	g.AddActor("consumer", func(ctx *runtime.Ctx) error {
		for {
			v, err := ab.Recv(ctx)
			if errors.Is(err, runtime.ErrClosed) {
				return nil
			}
			if err != nil {
				return err
			}
			ctx.Work(5, "consume")
			sum += v
		}
	}, runtime.Reads(ab))
	stats, err := g.Run(context.Background(), runtime.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	p, c := stats.Actor("producer"), stats.Actor("consumer")
	fmt.Println("sum", sum, "makespan", stats.Makespan)
	fmt.Println("producer busy", p.Busy, "blocked", p.TotalBlocked(), "finish", p.Finish)
	fmt.Printf("consumer busy %d starved %d utilisation %.3f\n", c.Busy, c.TotalStarved(), c.Utilisation)
	fmt.Printf("fifo ab: max %d, full %.3f of the time\n", stats.FIFO("ab").MaxOccupancy, stats.FIFO("ab").FullFraction)
	// Output:
	// sum 45 makespan 54
	// producer busy 30 blocked 10 finish 40
	// consumer busy 50 starved 4 utilisation 0.926
	// fifo ab: max 2, full 0.481 of the time
}
