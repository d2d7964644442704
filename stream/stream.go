package stream

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// EventKind is what an event tells the device.
type EventKind uint8

const (
	// Poke: something the device can see committed; pull now. Head is the
	// organisation's committed feed position it was poked for.
	Poke EventKind = iota + 1
	// Heartbeat: nothing happened; the connection is alive.
	Heartbeat
	// End: the stream ends for Code (Message explains); the device should
	// reconnect unless the code says it may not (docs/protocol.md).
	End
)

// Event is one thing to send on a stream.
type Event struct {
	Kind    EventKind
	Head    int64
	Code    string
	Message string
}

// Stream is one device's registration with the hub. Its transport calls
// Next in a loop, writes each event, and calls Close when the connection
// ends.
type Stream struct {
	hub       *Hub
	sub       Sub
	watch     bool      // registered by Watch: no device, no presence
	org       *orgState // guarded by hub.mu
	keys      []string  // guarded by hub.mu
	ready     int64
	wake      chan struct{}
	done      chan struct{}
	nextCheck time.Time // the sweep's

	mu      sync.Mutex
	head    int64     // highest head poked for
	poked   bool      // a poke is waiting to be sent
	beating bool      // a heartbeat is waiting to be sent
	since   time.Time // when the waiting heartbeat was due
	code    string
	msg     string
	endSent bool
	closed  bool
}

// Ready is the organisation's committed head when the stream registered:
// every change after it pokes the stream if the device can see it.
func (s *Stream) Ready() int64 { return s.ready }

// Next waits for the next event. It returns false once the stream has
// ended (after its End event) or ctx is done.
func (s *Stream) Next(ctx context.Context) (Event, bool) {
	for {
		s.mu.Lock()
		switch {
		case s.closed || s.endSent:
			s.mu.Unlock()
			return Event{}, false
		case s.code != "":
			s.endSent = true
			ev := Event{Kind: End, Code: s.code, Message: s.msg}
			s.mu.Unlock()
			return ev, true
		case s.poked:
			s.poked, s.beating = false, false
			ev := Event{Kind: Poke, Head: s.head}
			s.mu.Unlock()
			return ev, true
		case s.beating:
			s.beating = false
			s.mu.Unlock()
			return Event{Kind: Heartbeat}, true
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-ctx.Done():
			return Event{}, false
		}
	}
}

// Done is closed when the stream is closed.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Close unregisters the stream; it is safe to call more than once.
func (s *Stream) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	s.mu.Unlock()
	signal(s.wake)
	s.hub.remove(s)
}

func (s *Stream) poke(head int64) {
	s.mu.Lock()
	s.head = max(s.head, head)
	s.poked = true
	s.mu.Unlock()
	signal(s.wake)
}

// beat asks for a heartbeat. It reports how long an earlier one has been
// waiting: a stream nobody reads any more (its transport died before it
// started writing) is noticed by that.
func (s *Stream) beat(now time.Time) (waiting time.Duration) {
	s.mu.Lock()
	if s.beating {
		waiting = now.Sub(s.since)
	} else {
		s.beating, s.since = true, now
	}
	s.mu.Unlock()
	signal(s.wake)
	return waiting
}

// end makes the next event an End with code; the first reason wins.
func (s *Stream) end(code, msg string) {
	s.mu.Lock()
	if s.code == "" {
		s.code, s.msg = code, msg
	}
	s.mu.Unlock()
	signal(s.wake)
}

func (s *Stream) endReplaced() {
	s.end(CodeReplaced, "this device opened another stream")
}

// keysNow returns the read set in force.
func (s *Stream) keysNow() []string {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.keys
}

// keysLocked returns the read set in force; hub.mu must be held.
func (s *Stream) keysLocked() []string { return s.keys }

func asError(err error, target **engine.Error) bool { return errors.As(err, target) }
