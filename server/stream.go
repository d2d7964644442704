package server

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fieldsync/fieldsync/stream"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// The live stream, GET /v1/sync/stream, as server-sent events
// (docs/protocol.md, "Live stream").

// StreamHub is the live stream hub the endpoint serves (package stream).
type StreamHub interface {
	Open(ctx context.Context, sub stream.Sub) (*stream.Stream, error)
	// Watch is for RxDB's pull streams (adapters.go).
	Watch(ctx context.Context, sub stream.Sub) (*stream.Stream, error)
	Heartbeat() time.Duration
}

// StreamAccess is what the endpoint asks the engine: the caller's read set
// and the position of a checkpoint.
type StreamAccess interface {
	Access(ctx context.Context, actor engine.Actor) (engine.Access, error)
	Position(actor engine.Actor, checkpoint string) (seq int64, fingerprint string, err error)
}

// StreamConfig wires the live stream; with a nil Hub the route is not
// registered.
type StreamConfig struct {
	Hub    StreamHub
	Access StreamAccess
	// WriteTimeout bounds the write of one event to a client that stopped
	// reading (default 15 s); the connection then ends.
	WriteTimeout time.Duration
}

// streamPath is the endpoint's path; compression skips it (a compressed
// stream would hold events in the compressor's buffer).
const streamPath = "/v1/sync/stream"

// streamState is the server's side of its streams: the base context that
// ends them when the server shuts down.
type streamState struct {
	base context.Context
	end  context.CancelFunc
}

func (s *Server) streamRoutes(v1 fiber.Router, limit fiber.Handler) {
	s.streams.base, s.streams.end = context.WithCancel(context.Background())
	if s.cfg.Stream.Hub == nil {
		return
	}
	if s.cfg.Stream.WriteTimeout <= 0 {
		s.cfg.Stream.WriteTimeout = 15 * time.Second
	}
	// A stream's connection outlives its handler (see stream); fasthttp
	// must leave it open. Only this route hijacks connections.
	s.app.Server().KeepHijackedConns = true
	v1.Get("/sync/stream", s.authenticate, limit, s.stream)
	if n, ok := s.cfg.Stream.Hub.(interface{ Count() int }); ok {
		s.cfg.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "fieldsync_streams", Help: "Live streams open on this instance.",
		}, func() float64 { return float64(n.Count()) }))
	}
}

// ConsoleLive is what the console offers for its pages' live stream: the
// actor of the request's console session, and a re-check of that session
// while the stream is open (package console).
type ConsoleLive interface {
	LiveActor(c *fiber.Ctx) (engine.Actor, func(ctx context.Context) error, error)
}

// consoleLivePath is the console pages' stream: the API's live stream,
// authenticated by the console's session cookie instead of a bearer token.
// A queue page refreshes its list when poked (docs/console.md).
const consoleLivePath = "/console/live"

// consoleLiveRoute registers consoleLivePath when there is a console that
// offers it and a hub; before the console's routes, whose last one answers
// every other /console path with the not-found page.
func (s *Server) consoleLiveRoute() {
	live, ok := s.cfg.Console.(ConsoleLive)
	if !ok || s.cfg.Stream.Hub == nil {
		return
	}
	s.app.Get(consoleLivePath, func(c *fiber.Ctx) error { return s.consoleLive(c, live) })
}

// consoleLive serves one console page's stream. A page is a watch of the
// hub (as an RxDB pull stream), not a device: it keeps no presence record,
// replaces no other tab's stream, and counts against the user's watches,
// not the devices their phones stream from. A watch starts at the head:
// the page fetches its list when the stream opens (console.js), which
// covers what changed since it was rendered or while it reconnected.
func (s *Server) consoleLive(c *fiber.Ctx, live ConsoleLive) error {
	actor, recheck, err := live.LiveActor(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CallTimeout)
	defer cancel()
	acc, err := s.cfg.Stream.Access.Access(ctx, actor)
	if err != nil {
		return err
	}
	access := s.cfg.Stream.Access
	check := func(ctx context.Context) ([]string, error) {
		if err := recheck(ctx); err != nil {
			return nil, err
		}
		acc, err := access.Access(ctx, actor)
		return acc.Keys, err
	}
	st, err := s.cfg.Stream.Hub.Watch(ctx, stream.Sub{Org: actor.Org, User: actor.User, Keys: acc.Keys, Check: check})
	if err != nil {
		return err
	}
	s.serveStream(c, st)
	return nil
}

// endStreams ends every stream of this server; Shutdown calls it first, so
// that open streams do not hold the graceful shutdown up.
func (s *Server) endStreams() {
	if s.streams.end != nil {
		s.streams.end()
	}
}

// uncompressed tells the compression middleware to leave the stream alone.
func uncompressed(c *fiber.Ctx) bool {
	return c.Path() == streamPath || c.Path() == consoleLivePath || strings.HasSuffix(c.Path(), "/pullStream") || // and RxDB's (adapters.go)
		strings.HasPrefix(c.Path(), attachmentsPath+"/") // attachments.go
}

func (s *Server) stream(c *fiber.Ctx) error {
	actor := actorOf(c)
	// Fiber's strings live in reused buffers: copy what the stream keeps.
	device := strings.Clone(c.Query("device_id"))
	if !engine.ValidID(device) {
		return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/device_id",
			"device_id must be 1-128 characters of A-Z a-z 0-9 _ . : -")
	}
	token, _ := bearerToken(c.Get(fiber.HeaderAuthorization))
	token = strings.Clone(token)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CallTimeout)
	defer cancel()
	acc, err := s.cfg.Stream.Access.Access(ctx, actor)
	if err != nil {
		return err
	}
	after := int64(-1) // unknown: poke at once
	if cp := c.Query("checkpoint"); cp != "" {
		seq, fp, err := s.cfg.Stream.Access.Position(actor, cp)
		if err != nil {
			return err
		}
		if fp == acc.Fingerprint {
			after = seq
		} // else the read set changed: the next pull starts over, so poke
	} else if id := c.Get("Last-Event-ID"); id != "" {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n < 0 {
			return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/Last-Event-ID",
				"Last-Event-ID must be the id of an event this endpoint sent")
		}
		after = n
	}
	st, err := s.cfg.Stream.Hub.Open(ctx, stream.Sub{Org: actor.Org, User: actor.User, Device: device,
		Keys: acc.Keys, After: after, Check: s.streamCheck(token)})
	if err != nil {
		return err
	}
	s.serveStream(c, st)
	return nil
}

// serveStream serves the opened stream st on c's connection.
func (s *Server) serveStream(c *fiber.Ctx, st *stream.Stream) {
	// The connection is taken over from fasthttp once the handler returns
	// (a hijack without fasthttp's response): the stream then costs one
	// goroutine and no server buffers, where a body stream writer costs two
	// goroutines, a pipe and three buffers (docs/benchmarks.md). The
	// response is written here, delimited by the connection's end.
	rid := strings.Clone(requestID(c))
	base := s.streams.base
	wt := s.cfg.Stream.WriteTimeout
	hb := s.cfg.Stream.Hub.Heartbeat()
	c.Context().HijackSetNoResponse(true)
	c.Context().Hijack(func(conn net.Conn) {
		// Returning at once lets fasthttp release the request's context
		// and buffers; the connection is kept (KeepHijackedConns) and
		// pump closes it.
		go pump(conn, st, base, rid, wt, hb)
	})
}

// streamCheck is a stream's re-check (stream.Sub.Check): the token must
// still be valid (it expires; the device then reconnects with a fresh one),
// and the directory must still let the user in.
func (s *Server) streamCheck(token string) func(ctx context.Context) ([]string, error) {
	access, verify := s.cfg.Stream.Access, s.cfg.Auth
	return func(ctx context.Context) ([]string, error) {
		a, err := verify.Verify(token)
		if err != nil {
			return nil, err
		}
		acc, err := access.Access(ctx, a)
		return acc.Keys, err
	}
}

// pump writes the stream's response and events to conn until the stream
// ends, the client goes away or base is cancelled.
func pump(conn net.Conn, st *stream.Stream, base context.Context, rid string, wt, hb time.Duration) {
	defer conn.Close()
	defer st.Close()
	// Each write gets its own deadline, so a client that stopped reading
	// ends its stream instead of holding it.
	write := func(b []byte) bool {
		conn.SetWriteDeadline(time.Now().Add(wt))
		_, err := conn.Write(b)
		return err == nil
	}
	// A device that closed its end is noticed at the next heartbeat by a
	// read that returns at once (a live client sends nothing and the read
	// times out after a millisecond); a write into a closed connection
	// only fails one write later. The read goes to the raw connection:
	// fasthttp's wrapper reads through a buffer it has given back.
	raw := conn
	if u, ok := conn.(interface{ UnsafeConn() net.Conn }); ok {
		raw = u.UnsafeConn()
	}
	gone := func() bool {
		raw.SetReadDeadline(time.Now().Add(time.Millisecond))
		var b [1]byte
		_, err := raw.Read(b[:])
		var ne net.Error
		return err != nil && !(errors.As(err, &ne) && ne.Timeout())
	}
	buf := make([]byte, 0, 256)
	buf = append(buf, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"+
		"X-Accel-Buffering: no\r\nConnection: close\r\nX-Request-Id: "...)
	buf = append(buf, rid...)
	buf = append(buf, "\r\n\r\n"...)
	buf = appendReady(buf, st.Ready(), hb)
	if !write(buf) {
		return
	}
	for {
		ev, ok := st.Next(base)
		if !ok {
			if base.Err() != nil {
				write(appendEvent(buf[:0], stream.Event{Kind: stream.End, Code: stream.CodeShuttingDown,
					Message: "the server is shutting down; reconnect"}))
			}
			return
		}
		if ev.Kind == stream.Heartbeat && gone() {
			return
		}
		if !write(appendEvent(buf[:0], ev)) || ev.Kind == stream.End {
			return
		}
	}
}

// appendReady is the first event of a stream: a reconnection delay for
// EventSource clients and the head the stream starts from.
func appendReady(b []byte, head int64, hb time.Duration) []byte {
	b = append(b, "retry: 2000\nevent: ready\ndata: {\"head\":"...)
	b = strconv.AppendInt(b, head, 10)
	b = append(b, `,"heartbeat_s":`...)
	b = strconv.AppendInt(b, int64(hb/time.Second), 10)
	return append(b, "}\n\n"...)
}

// appendEvent encodes one event.
func appendEvent(b []byte, ev stream.Event) []byte {
	switch ev.Kind {
	case stream.Poke:
		b = append(b, "id: "...)
		b = strconv.AppendInt(b, ev.Head, 10)
		b = append(b, "\nevent: poke\ndata: {\"head\":"...)
		b = strconv.AppendInt(b, ev.Head, 10)
		return append(b, "}\n\n"...)
	case stream.End:
		data, _ := json.Marshal(struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}{ev.Code, ev.Message})
		b = append(b, "event: end\ndata: "...)
		b = append(b, data...)
		return append(b, "\n\n"...)
	}
	return append(b, ":\n\n"...) // a heartbeat is a comment line
}
