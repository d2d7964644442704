// Package faultproxy is a TCP proxy that breaks connections on purpose,
// for tests of what a phone on a bad network does: it cuts a connection
// after some bytes of what the client sends (a chunk cut off mid-way), or
// passes the request on and cuts the connection when the reply starts (the
// server acted, the phone never hears). Faults come from a seeded
// generator, so a failing run can be replayed. For tests only.
package faultproxy

import (
	"io"
	"math/rand/v2"
	"net"
	"sync"
)

// Faults says how often each fault strikes a new connection.
type Faults struct {
	// CutRequest is the probability that the connection is cut after a
	// random number of bytes (1 to CutWithin) from the client.
	CutRequest float64
	CutWithin  int
	// LoseReply is the probability that the client's bytes go through and
	// the connection is cut when the server's reply begins.
	LoseReply float64
	Seed      uint64
}

// Counts are the faults struck so far.
type Counts struct {
	Conns, Cut, Lost int
}

// Proxy forwards connections to an upstream address.
type Proxy struct {
	ln       net.Listener
	upstream string
	f        Faults
	wg       sync.WaitGroup
	mu       sync.Mutex
	rnd      *rand.Rand
	conns    map[net.Conn]bool
	counts   Counts
}

// Start listens on a free loopback port and forwards to upstream.
func Start(upstream string, f Faults) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if f.CutWithin < 1 {
		f.CutWithin = 1
	}
	p := &Proxy{ln: ln, upstream: upstream, f: f, rnd: rand.New(rand.NewPCG(f.Seed, 7)), conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Counts returns the faults struck so far.
func (p *Proxy) Counts() Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts
}

// Close stops accepting and ends every open connection.
func (p *Proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = true
	} else {
		delete(p.conns, c)
	}
}

// plan draws the fate of a new connection: cut after n client bytes
// (n > 0), lose the reply, or neither.
func (p *Proxy) plan() (cutAfter int64, lose bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts.Conns++
	switch r := p.rnd.Float64(); {
	case r < p.f.CutRequest:
		p.counts.Cut++
		return int64(1 + p.rnd.IntN(p.f.CutWithin)), false
	case r < p.f.CutRequest+p.f.LoseReply:
		p.counts.Lost++
		return 0, true
	}
	return 0, false
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			c.Close()
			continue
		}
		cutAfter, lose := p.plan()
		p.track(c, true)
		p.track(up, true)
		end := func() { c.Close(); up.Close(); p.track(c, false); p.track(up, false) }
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			if cutAfter > 0 {
				io.CopyN(up, c, cutAfter)
				end()
				return
			}
			if _, err := io.Copy(up, c); err != nil {
				end()
				return
			}
			// The client is done sending: pass the half-close on and let
			// the reply finish.
			if tc, ok := up.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
		}()
		go func() {
			defer p.wg.Done()
			defer end()
			if lose {
				// Wait for the first byte of the reply, then drop it all.
				var one [1]byte
				io.ReadFull(up, one[:])
				return
			}
			io.Copy(c, up)
		}()
	}
}
