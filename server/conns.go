package server

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// fasthttp counts a connection as active from the moment it is accepted
// until its first request has been read, so a connection that a client
// opened and never used holds Shutdown until the read timeout (60 s). Such
// connections are common: Go's HTTP transport dials a spare when requests
// overlap and parks it unused, and phones open sockets ahead of need. The
// listener remembers the connections that have not sent a byte yet, so
// that Shutdown can close them; a connection that has started a request is
// left to finish it.
//
// A request's first bytes may arrive at the very moment Shutdown closes its
// connection. The listener's lock decides which came first: a connection
// that Shutdown ended reads as closed (io.EOF) even if the bytes made it,
// so fasthttp never starts a request on it (it would panic setting the
// reply's write deadline on a closed connection), and the client sees a
// connection closed before any answer, which it retries like any network
// failure. Answering it with an error status instead (an expired read
// deadline makes fasthttp reply "Request Timeout") would tell the client
// its request was bad.
type trackedListener struct {
	net.Listener
	mu       sync.Mutex
	fresh    map[*trackedConn]struct{}
	shutting bool
}

func newTrackedListener(ln net.Listener) *trackedListener {
	return &trackedListener{Listener: ln, fresh: map[*trackedConn]struct{}{}}
}

func (l *trackedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, l: l}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shutting {
		// Accepted while shutting down: nothing will be served on it.
		tc.ended = true
		c.Close()
		return tc, nil
	}
	l.fresh[tc] = struct{}{}
	return tc, nil
}

// endFresh closes the connections that never sent a byte, and every one
// accepted from now on.
func (l *trackedListener) endFresh() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.shutting = true
	n := len(l.fresh)
	for c := range l.fresh {
		c.ended = true
		c.Conn.Close()
		delete(l.fresh, c)
	}
	return n
}

type trackedConn struct {
	net.Conn
	l *trackedListener
	// used is set under l.mu and read without it: only a connection that
	// is not used yet can be ended, so after the first read the lock is
	// never taken again. ended is guarded by l.mu. Once set, each stays.
	used  atomic.Bool
	ended bool
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n == 0 || c.used.Load() {
		return n, err
	}
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if c.ended {
		return 0, io.EOF
	}
	c.used.Store(true)
	delete(c.l.fresh, c)
	return n, err
}

func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.fresh, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}
