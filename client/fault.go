package client

import (
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
)

// Errors a FaultTransport injects.
var (
	ErrDropped   = errors.New("client: fault: request dropped before sending")
	ErrReplyLost = errors.New("client: fault: reply lost after the server answered")
)

// FaultTransport is an http.RoundTripper that loses traffic on purpose, for
// convergence tests: with probability DropRequest a request never leaves;
// with probability LoseReply it is served (so a push is committed) and the
// reply is read, discarded and replaced by an error. Faults come from a
// seeded generator, so a failing run can be replayed. Safe for concurrent use.
type FaultTransport struct {
	Base        http.RoundTripper // default http.DefaultTransport
	DropRequest float64
	LoseReply   float64

	mu     sync.Mutex
	rnd    *rand.Rand
	counts FaultCounts
}

// FaultCounts says what a FaultTransport did.
type FaultCounts struct {
	Requests int // round trips asked for
	Dropped  int // never sent
	Lost     int // sent and served, reply discarded
}

// NewFaultTransport wraps base (nil: http.DefaultTransport) with faults drawn
// from seed.
func NewFaultTransport(base http.RoundTripper, seed uint64, dropRequest, loseReply float64) *FaultTransport {
	return &FaultTransport{Base: base, DropRequest: dropRequest, LoseReply: loseReply,
		rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Counts returns the counters so far.
func (f *FaultTransport) Counts() FaultCounts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts
}

// RoundTrip implements http.RoundTripper.
func (f *FaultTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	if f.rnd == nil {
		f.rnd = rand.New(rand.NewPCG(0, 0x9e3779b97f4a7c15))
	}
	f.counts.Requests++
	drop := f.rnd.Float64() < f.DropRequest
	lose := !drop && f.rnd.Float64() < f.LoseReply
	if drop {
		f.counts.Dropped++
	}
	f.mu.Unlock()

	if drop {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, ErrDropped
	}
	base := f.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil || !lose {
		return resp, err
	}
	// Read the whole reply, so the server has finished with the request
	// before the client sees the failure.
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	f.mu.Lock()
	f.counts.Lost++
	f.mu.Unlock()
	return nil, ErrReplyLost
}
