package server

import (
	"net"
	gosync "sync"
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
type trackedListener struct {
	net.Listener
	mu       gosync.Mutex
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
		c.Close()
		return tc, nil
	}
	l.fresh[tc] = struct{}{}
	return tc, nil
}

// closeFresh closes the connections that never sent a byte, and every one
// accepted from now on.
func (l *trackedListener) closeFresh() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.shutting = true
	n := len(l.fresh)
	for c := range l.fresh {
		c.Conn.Close()
		delete(l.fresh, c)
	}
	return n
}

func (l *trackedListener) forget(c *trackedConn) {
	l.mu.Lock()
	delete(l.fresh, c)
	l.mu.Unlock()
}

type trackedConn struct {
	net.Conn
	l    *trackedListener
	used atomic.Bool
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.used.Load() {
		c.used.Store(true)
		c.l.forget(c)
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.l.forget(c)
	return c.Conn.Close()
}
