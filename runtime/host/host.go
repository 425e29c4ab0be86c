// Package host is vitflow's control plane: a protoactor-go actor that
// accepts run requests (a function that builds and runs a graph, or any
// other long job), runs at most a fixed number of them at a time, and
// answers each with its result or its error.
//
// protoactor-go supervises and serves here; it never carries simulation
// data, which flows through runtime FIFOs. A failing run fails only its own
// request: the host keeps serving, and nothing is silently restarted (a run
// is a function call that returns an error, and the host actor itself is
// stopped, not restarted, if it ever fails). protoactor logs through the
// caller's slog.Logger and is silent without one; its metrics are off and
// its mailbox is the default unbounded one.
package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
)

// ErrClosed is returned for requests made to a closed host, or still
// queued when it closed.
var ErrClosed = errors.New("host closed")

// RunFunc is a job: typically it builds a runtime.Graph, runs it with ctx and
// returns its statistics. ctx is cancelled when the requester's context is,
// or when the host closes.
type RunFunc func(ctx context.Context) (any, error)

// Request asks the host to run a job. Send it as a *Request to [Host.PID]
// from another actor, or use [Host.Run]. The reply, to the sender, is a
// *Reply.
type Request struct {
	Name string
	Ctx  context.Context // the requester's context; nil means Background
	Run  RunFunc
}

// Reply answers a Request.
type Reply struct {
	Name  string
	Value any
	Err   error
}

// Options configure a host.
type Options struct {
	// MaxConcurrent bounds the runs in progress; further requests wait in
	// order of arrival. Default 1.
	MaxConcurrent int
	// Logger receives protoactor's and the host's log; nil discards it.
	Logger *slog.Logger
}

// Host owns an actor system with one host actor.
type Host struct {
	system *actor.ActorSystem
	pid    *actor.PID
	ctx    context.Context // cancelled by Close: ends all runs
	cancel context.CancelFunc
	runs   sync.WaitGroup
	closed atomic.Bool
}

// New starts a host.
func New(opt Options) (*Host, error) {
	if opt.MaxConcurrent == 0 {
		opt.MaxConcurrent = 1
	}
	if opt.MaxConcurrent < 0 {
		return nil, fmt.Errorf("host: MaxConcurrent %d must be positive", opt.MaxConcurrent)
	}
	logger := opt.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &Host{}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.system = actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return logger }),
	)
	// If the host actor itself ever panics, stop it rather than restart it
	// with an empty queue: requests then fail (dead letters) instead of
	// silently vanishing.
	stop := actor.NewOneForOneStrategy(0, 0, func(reason any) actor.Directive {
		logger.Error("host actor failed; stopping it", "reason", fmt.Sprint(reason))
		return actor.StopDirective
	})
	props := actor.PropsFromProducer(func() actor.Actor {
		return &hostActor{host: h, max: opt.MaxConcurrent, logger: logger}
	})
	pid, err := h.system.Root.WithGuardian(stop).SpawnNamed(props, "host")
	if err != nil {
		h.cancel()
		h.system.Shutdown()
		return nil, fmt.Errorf("host: spawn: %w", err)
	}
	h.pid = pid
	return h, nil
}

// PID returns the host actor's address, for requests from other actors.
func (h *Host) PID() *actor.PID { return h.pid }

// Run submits a job and waits for its reply. It returns ErrClosed if the
// host is closed.
func (h *Host) Run(ctx context.Context, name string, run RunFunc) (any, error) {
	if h.closed.Load() {
		return nil, fmt.Errorf("run %q: %w", name, ErrClosed)
	}
	// No timeout: the job's own context bounds it, and the host answers
	// every request, with ErrClosed if need be.
	f := h.system.Root.RequestFuture(h.pid, &Request{Name: name, Ctx: ctx, Run: run}, -1)
	res, err := f.Result()
	if err != nil {
		// A dead letter: the host stopped between the check and the send.
		return nil, fmt.Errorf("run %q: %w (%w)", name, ErrClosed, err)
	}
	r := res.(*Reply)
	return r.Value, r.Err
}

// Close cancels the runs in progress, answers queued requests with
// ErrClosed, and stops the actor system. It waits for the runs to return.
func (h *Host) Close() {
	if h.closed.Swap(true) {
		return
	}
	h.cancel()
	h.runs.Wait()
	// The poison is queued behind the runs' completions, so every run is
	// answered before the actor stops.
	if err := h.system.Root.PoisonFuture(h.pid).Wait(); err != nil {
		h.system.Logger().Warn("host: stop", "err", err)
	}
	h.system.Shutdown()
}

// hostActor is the actor's state; protoactor runs Receive one message at a
// time, so it needs no lock.
type hostActor struct {
	host    *Host
	max     int
	running int
	queue   []pending
	logger  *slog.Logger
}

type pending struct {
	req    *Request
	sender *actor.PID
}

// runDone is sent by a run's goroutine back to the host actor.
type runDone struct {
	reply  *Reply
	sender *actor.PID
}

func (a *hostActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *Request:
		if m.Run == nil {
			a.answer(ctx, ctx.Sender(), &Reply{Name: m.Name, Err: fmt.Errorf("run %q: nil RunFunc", m.Name)})
			return
		}
		a.queue = append(a.queue, pending{req: m, sender: ctx.Sender()})
		a.start(ctx)
	case runDone:
		a.running--
		a.answer(ctx, m.sender, m.reply)
		a.start(ctx)
	case *actor.Stopping:
		for _, p := range a.queue {
			a.answer(ctx, p.sender, &Reply{Name: p.req.Name, Err: fmt.Errorf("run %q: %w", p.req.Name, ErrClosed)})
		}
		a.queue = nil
	}
}

func (a *hostActor) answer(ctx actor.Context, to *actor.PID, r *Reply) {
	if r.Err != nil {
		a.logger.Debug("run failed", "name", r.Name, "err", r.Err)
	}
	if to != nil {
		ctx.Send(to, r)
	}
}

// start launches queued runs while there is room.
func (a *hostActor) start(ctx actor.Context) {
	for a.running < a.max && len(a.queue) > 0 {
		p := a.queue[0]
		a.queue[0] = pending{}
		a.queue = a.queue[1:]
		if a.host.closed.Load() {
			a.answer(ctx, p.sender, &Reply{Name: p.req.Name, Err: fmt.Errorf("run %q: %w", p.req.Name, ErrClosed)})
			continue
		}
		a.running++
		a.host.runs.Add(1)
		self, system := ctx.Self(), ctx.ActorSystem()
		go func() {
			defer a.host.runs.Done()
			reply := a.host.execute(p.req)
			system.Root.Send(self, runDone{reply: reply, sender: p.sender})
		}()
	}
}

// execute runs a job under the requester's and the host's contexts,
// turning a panic into an error.
func (h *Host) execute(req *Request) (reply *Reply) {
	reply = &Reply{Name: req.Name}
	parent := req.Ctx
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	stop := context.AfterFunc(h.ctx, cancel)
	defer stop()
	defer func() {
		if r := recover(); r != nil {
			reply.Value = nil
			reply.Err = fmt.Errorf("run %q panicked: %v\n%s", req.Name, r, debug.Stack())
		}
	}()
	if err := ctx.Err(); err != nil {
		reply.Err = fmt.Errorf("run %q: %w", req.Name, err)
		return reply
	}
	reply.Value, reply.Err = req.Run(ctx)
	if reply.Err != nil {
		reply.Err = fmt.Errorf("run %q: %w", req.Name, reply.Err)
	}
	return reply
}
