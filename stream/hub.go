// Package stream is the live stream of open apps: it tells every connected
// device "pull now" as soon as a change it can see commits, on whichever
// server instance the change was written.
//
// A Hub runs one poller per organisation that has connected devices. The
// poller asks the store what changed after the last head it saw (the
// committed head and the scope keys written since) and pokes each device
// whose read set meets those keys. Local commits wake the poller at once;
// polling is the path for changes written through other instances. The hub
// also keeps presence records (which device streams on which instance) so
// that the push dispatcher can skip a silent notification for a device that
// is connected anywhere.
//
// The package owns the rules of the stream, not its wire format: it must
// not import HTTP, database or Firebase packages. The transport (package
// server) turns Events into server-sent events.
package stream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// Feed is what the hub reads from the store.
type Feed interface {
	// Head returns the organisation's committed head.
	Head(ctx context.Context, org string) (int64, error)
	// Changed returns the committed head and the scope keys changed in
	// (after, head], or All past maxKeys keys.
	Changed(ctx context.Context, org string, after int64, maxKeys int) (engine.ChangeSet, error)
}

// Hinter is a Feed that can tell, for many organisations in one read, an
// upper bound of each head (the highest number allocated). With it the hub
// asks once per tick for every organisation it streams, and an
// organisation's poller reads what changed only when its hint moved: the
// idle cost of an instance is one read per tick, not one per organisation.
type Hinter interface {
	HeadHints(ctx context.Context, orgs []string) (map[string]int64, error)
}

// Presences records which devices hold a stream on which instance.
type Presences interface {
	// Touch writes (or renews) records; Renew moves the expiry of all of
	// an instance's records at once and says how many there are; Leave
	// removes records and every expired one.
	Touch(ctx context.Context, ps []engine.Presence) error
	Renew(ctx context.Context, instance string, expires time.Time) (int, error)
	Leave(ctx context.Context, ps []engine.Presence, now time.Time) error
}

// Config tunes a Hub. Zero fields take the defaults documented on each.
type Config struct {
	Feed     Feed
	Presence Presences // nil: no presence records are kept
	// Instance names this server instance in presence records (random
	// when empty).
	Instance string
	// Poll is how often an organisation's poller asks the store (default
	// 50 ms). Wake makes it ask at once.
	Poll time.Duration
	// Heartbeat is how often an idle stream gets a heartbeat and presence
	// records are renewed (default 25 s). Records expire after two.
	Heartbeat time.Duration
	// Recheck is how often a stream's access is checked again (default
	// 60 s; a check runs with the first heartbeat after it is due).
	Recheck time.Duration
	// MaxPerUser bounds the devices of one user streaming from this
	// instance (default 5), and WatchesPerDevice times it the user's
	// watches (Watch); MaxStreams the streams and watches of the instance
	// (default 10,000).
	MaxPerUser int
	MaxStreams int
	// MaxKeys bounds the keys of one change summary; past it every device
	// of the organisation is poked (default 512).
	MaxKeys int
	// CatchUp is the backlog past which a connecting device is poked
	// without looking at what changed (default 4096 positions).
	CatchUp int64
	Now     func() time.Time
	Logger  *slog.Logger
}

// Defaults of Config.
const (
	DefaultPoll       = 50 * time.Millisecond
	DefaultHeartbeat  = 25 * time.Second
	DefaultRecheck    = 60 * time.Second
	DefaultMaxPerUser = 5
	DefaultMaxStreams = 10000
	DefaultMaxKeys    = 512
	DefaultCatchUp    = 4096
)

// Error codes of the stream (docs/protocol.md).
const (
	// CodeTooManyStreams refuses a device of a user who already streams
	// from MaxPerUser other devices on this instance (429).
	CodeTooManyStreams = "too_many_streams"
	// CodeStreamsFull refuses a stream when the instance holds MaxStreams
	// (503: another instance may take it).
	CodeStreamsFull = "streams_full"
	// End codes, sent in the last event of a stream.
	CodeReplaced     = "replaced"      // the same device opened another stream here
	CodeShuttingDown = "shutting_down" // the instance stops; reconnect
)

// Hub is one instance's set of live streams. It is safe for concurrent use.
type Hub struct {
	cfg  Config
	log  *slog.Logger
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu      sync.Mutex
	orgs    map[string]*orgState
	devices map[devKey]*Stream
	users   map[userKey]int
	watches map[*Stream]struct{} // Watch's: not devices
	wusers  map[userKey]int      // watches per user
	total   int
	closed  bool

	hinter Hinter // the Feed's, when it offers hints (hints)

	pmu    sync.Mutex
	pjoin  map[devKey]bool // presence to write or delete at the next flush
	pkick  chan struct{}
	checks chan struct{} // bounds concurrent access re-checks
}

type devKey struct{ org, user, device string }
type userKey struct{ org, user string }

// orgState is one organisation's poller and streams.
type orgState struct {
	org     string
	ready   chan struct{} // closed once head is known
	err     error         // set before ready closes when the first head failed
	head    int64         // guarded by Hub.mu after ready
	streams map[*Stream]struct{}
	wake    chan struct{}
	cancel  context.CancelFunc
}

// New returns a running hub; Close stops it.
func New(cfg Config) *Hub {
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.Recheck <= 0 {
		cfg.Recheck = DefaultRecheck
	}
	if cfg.MaxPerUser <= 0 {
		cfg.MaxPerUser = DefaultMaxPerUser
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if cfg.CatchUp <= 0 {
		cfg.CatchUp = DefaultCatchUp
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Instance == "" {
		b := make([]byte, 8)
		rand.Read(b)
		cfg.Instance = hex.EncodeToString(b)
	}
	h := &Hub{cfg: cfg, log: cfg.Logger, orgs: map[string]*orgState{}, devices: map[devKey]*Stream{},
		users: map[userKey]int{}, watches: map[*Stream]struct{}{}, wusers: map[userKey]int{}, pjoin: map[devKey]bool{}, pkick: make(chan struct{}, 1), checks: make(chan struct{}, 8)}
	h.ctx, h.stop = context.WithCancel(context.Background())
	h.wg.Add(2)
	go h.sweep()
	go h.presence()
	if hinter, ok := cfg.Feed.(Hinter); ok {
		h.hinter = hinter
		h.wg.Add(1)
		go h.hints()
	}
	return h
}

// hintBatch bounds the organisations of one HeadHints read.
const hintBatch = 1000

// hints asks, every Poll, for the head hints of every organisation with a
// stream here, and wakes the pollers of those whose hint passed their head.
func (h *Hub) hints() {
	defer h.wg.Done()
	t := time.NewTicker(h.cfg.Poll)
	defer t.Stop()
	fails := 0
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		h.mu.Lock()
		orgs := make([]*orgState, 0, len(h.orgs))
		for _, o := range h.orgs {
			orgs = append(orgs, o)
		}
		h.mu.Unlock()
		for start := 0; start < len(orgs); start += hintBatch {
			chunk := orgs[start:min(start+hintBatch, len(orgs))]
			ids := make([]string, len(chunk))
			for i, o := range chunk {
				ids[i] = o.org
			}
			ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
			hints, err := h.hinter.HeadHints(ctx, ids)
			cancel()
			if err != nil {
				if h.ctx.Err() != nil {
					return
				}
				if fails++; fails == 1 || fails%100 == 0 {
					h.log.Warn("stream: head hints", "err", err, "failures", fails)
				}
				continue
			}
			fails = 0
			h.mu.Lock()
			for _, o := range chunk {
				if hints[o.org] > o.head {
					select {
					case o.wake <- struct{}{}:
					default:
					}
				}
			}
			h.mu.Unlock()
		}
	}
}

// Instance is the id this hub writes in presence records.
func (h *Hub) Instance() string { return h.cfg.Instance }

// Heartbeat is the configured heartbeat interval.
func (h *Hub) Heartbeat() time.Duration { return h.cfg.Heartbeat }

// Wake makes org's poller ask the store at once (after a local commit).
// It never blocks.
func (h *Hub) Wake(org string) {
	h.mu.Lock()
	o := h.orgs[org]
	h.mu.Unlock()
	if o != nil {
		signal(o.wake)
	}
}

// Count returns the number of open streams.
func (h *Hub) Count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.total
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Close ends every stream (with CodeShuttingDown), stops the pollers and
// removes this instance's presence records. Call it before the store closes.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	all := h.allLocked()
	h.mu.Unlock()
	for _, s := range all {
		s.end(CodeShuttingDown, "the server is shutting down; reconnect")
	}
	h.stop()
	h.wg.Wait()
}

// Sub describes a stream to open.
type Sub struct {
	Org, User, Device string
	// Keys is the caller's read set (sorted), as the engine computes it.
	Keys []string
	// After is the feed position the device already has (from its
	// checkpoint or the last event id); negative when unknown, which
	// pokes at once.
	After int64
	// Check re-checks the caller's access and returns the read set in
	// force; an error ends the stream when it is an *engine.Error of kind
	// unauthorized or forbidden. Nil never re-checks.
	Check func(ctx context.Context) ([]string, error)
}

// WatchesPerDevice is how many watches (Watch) a user may hold on an
// instance per device the user may stream from (MaxPerUser): a library's
// app opens one pull stream per collection.
const WatchesPerDevice = 16

// Open registers a device's stream. It refuses with an *engine.Error when
// a limit is reached; ctx bounds the store reads of the catch-up check.
func (h *Hub) Open(ctx context.Context, sub Sub) (*Stream, error) {
	return h.open(ctx, sub, false)
}

// Watch registers a listener that is not a device's live stream: one pull
// stream of a sync library (adapters/rxdb), which an app opens per
// collection. It is poked, beaten and re-checked like a stream, so the
// library's streams wait on the same poller as the native stream (local
// commits at once, other instances' within Poll) instead of each asking the
// store on a timer. Unlike a stream it starts at the head (Ready; After is
// ignored: the library pulls up to there itself when its stream opens),
// keeps no presence record (the push dispatcher does not learn of the
// device by it), replaces nothing (Device is ignored) and counts against
// WatchesPerDevice*MaxPerUser per user.
func (h *Hub) Watch(ctx context.Context, sub Sub) (*Stream, error) {
	sub.Device = ""
	return h.open(ctx, sub, true)
}

func (h *Hub) open(ctx context.Context, sub Sub, watch bool) (*Stream, error) {
	st := &Stream{hub: h, sub: sub, watch: watch, keys: slices.Clone(sub.Keys), wake: make(chan struct{}, 1),
		done: make(chan struct{}), nextCheck: h.cfg.Now().Add(h.cfg.Recheck)}
	dk := devKey{sub.Org, sub.User, sub.Device}
	uk := userKey{sub.Org, sub.User}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, engine.Errorf(engine.KindUnavailable, CodeShuttingDown, "", "the server is shutting down; reconnect")
	}
	var old *Stream
	if !watch {
		old = h.devices[dk]
	}
	switch {
	case watch:
		if h.wusers[uk] >= WatchesPerDevice*h.cfg.MaxPerUser {
			h.mu.Unlock()
			return nil, engine.Errorf(engine.KindRateLimited, CodeTooManyStreams, "",
				"this user already holds %d pull streams on this server", WatchesPerDevice*h.cfg.MaxPerUser)
		}
		if h.total >= h.cfg.MaxStreams {
			h.mu.Unlock()
			return nil, engine.Errorf(engine.KindUnavailable, CodeStreamsFull, "",
				"this server holds its limit of %d streams; retry later", h.cfg.MaxStreams)
		}
		h.wusers[uk]++
		h.total++
		h.watches[st] = struct{}{}
	case old == nil:
		if h.users[uk] >= h.cfg.MaxPerUser {
			h.mu.Unlock()
			return nil, engine.Errorf(engine.KindRateLimited, CodeTooManyStreams, "",
				"this user already streams from %d devices on this server", h.cfg.MaxPerUser)
		}
		if h.total >= h.cfg.MaxStreams {
			h.mu.Unlock()
			return nil, engine.Errorf(engine.KindUnavailable, CodeStreamsFull, "",
				"this server holds its limit of %d streams; retry later", h.cfg.MaxStreams)
		}
		h.users[uk]++
		h.total++
	}
	if !watch {
		h.devices[dk] = st
	}
	o := h.orgs[sub.Org]
	if o == nil {
		o = h.startOrg(sub.Org)
	}
	if old != nil {
		delete(o.streams, old)
	}
	o.streams[st] = struct{}{}
	st.org = o
	h.mu.Unlock()
	if old != nil {
		old.endReplaced()
	}
	if !watch {
		h.join(dk, true)
	}

	// The poller pokes for every change that commits from now on; the
	// catch-up covers what the device missed before.
	select {
	case <-o.ready:
	case <-ctx.Done():
		st.Close()
		return nil, engine.Wrap(ctx.Err(), engine.KindUnavailable, engine.CodeUnavailable, "the store did not answer in time")
	}
	if o.err != nil {
		st.Close()
		return nil, o.err
	}
	h.mu.Lock()
	head := o.head
	h.mu.Unlock()
	st.ready = head
	if watch {
		return st, nil // it starts at the head: nothing to catch up
	}
	if err := h.catchUp(ctx, st, head); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// catchUp pokes st when something it can see committed after its position.
func (h *Hub) catchUp(ctx context.Context, st *Stream, head int64) error {
	after := st.sub.After
	if after < 0 || head-after > h.cfg.CatchUp {
		st.poke(head)
		return nil
	}
	for after < head {
		cs, err := h.cfg.Feed.Changed(ctx, st.sub.Org, after, h.cfg.MaxKeys)
		if err != nil {
			return err
		}
		if cs.All || meets(st.keysNow(), cs.Keys) {
			// The device pulls to the end, so the poke may claim the
			// registration head even when the walk stopped short of it.
			st.poke(max(cs.Head, head))
			return nil
		}
		if cs.Head <= after {
			return nil
		}
		after = cs.Head
	}
	return nil
}

// startOrg starts org's poller. Called with h.mu held.
func (h *Hub) startOrg(org string) *orgState {
	ctx, cancel := context.WithCancel(h.ctx)
	o := &orgState{org: org, ready: make(chan struct{}), streams: map[*Stream]struct{}{},
		wake: make(chan struct{}, 1), cancel: cancel}
	h.orgs[org] = o
	h.wg.Add(1)
	go h.poll(ctx, o)
	return o
}

// poll is org's poller: it learns the head, then asks what changed after
// it on every tick or wake-up, until its last stream leaves.
func (h *Hub) poll(ctx context.Context, o *orgState) {
	defer h.wg.Done()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	head, err := h.cfg.Feed.Head(cctx, o.org)
	cancel()
	if err != nil {
		h.log.Warn("stream: read head", "org", o.org, "err", err)
		o.err = err
		h.mu.Lock()
		if h.orgs[o.org] == o {
			delete(h.orgs, o.org)
		}
		h.mu.Unlock()
		close(o.ready)
		return
	}
	h.mu.Lock()
	o.head = head
	h.mu.Unlock()
	close(o.ready)
	// With hints, a poller looks only when woken (a hint moved, or a commit
	// through this instance); without, on its own tick too.
	var tick <-chan time.Time
	if h.hinter == nil {
		t := time.NewTicker(h.cfg.Poll)
		defer t.Stop()
		tick = t.C
	}
	fails := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-o.wake:
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cs, err := h.cfg.Feed.Changed(cctx, o.org, head, h.cfg.MaxKeys)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if fails++; fails == 1 || fails%100 == 0 {
				h.log.Warn("stream: poll", "org", o.org, "err", err, "failures", fails)
			}
			continue
		}
		fails = 0
		if cs.Head <= head {
			continue
		}
		head = cs.Head
		h.mu.Lock()
		o.head = head
		var hit []*Stream
		if cs.All || len(cs.Keys) > 0 {
			for s := range o.streams {
				if cs.All || meets(s.keysLocked(), cs.Keys) {
					hit = append(hit, s)
				}
			}
		}
		h.mu.Unlock()
		for _, s := range hit {
			s.poke(head)
		}
	}
}

// meets reports whether two sorted key lists share a key.
func meets(a, b []string) bool {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			return true
		case a[i] < b[j]:
			i++
		default:
			j++
		}
	}
	return false
}

// remove unregisters st; it stops its organisation's poller when st was the
// last stream there.
func (h *Hub) remove(st *Stream) {
	dk := devKey{st.sub.Org, st.sub.User, st.sub.Device}
	h.mu.Lock()
	if _, ok := h.watches[st]; ok {
		delete(h.watches, st)
		uk := userKey{st.sub.Org, st.sub.User}
		if h.wusers[uk]--; h.wusers[uk] <= 0 {
			delete(h.wusers, uk)
		}
		h.total--
	}
	if !st.watch && h.devices[dk] == st {
		delete(h.devices, dk)
		uk := userKey{st.sub.Org, st.sub.User}
		if h.users[uk]--; h.users[uk] <= 0 {
			delete(h.users, uk)
		}
		h.total--
		defer h.join(dk, false)
	}
	if o := st.org; o != nil {
		delete(o.streams, st)
		if len(o.streams) == 0 && h.orgs[o.org] == o {
			delete(h.orgs, o.org)
			o.cancel()
		}
	}
	h.mu.Unlock()
}

// allLocked returns every stream and watch; h.mu must be held.
func (h *Hub) allLocked() []*Stream {
	all := make([]*Stream, 0, len(h.devices)+len(h.watches))
	for _, s := range h.devices {
		all = append(all, s)
	}
	for s := range h.watches {
		all = append(all, s)
	}
	return all
}

// sweep sends heartbeats, renews presence and re-checks access.
func (h *Hub) sweep() {
	defer h.wg.Done()
	t := time.NewTicker(h.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		now := h.cfg.Now()
		h.mu.Lock()
		all := h.allLocked()
		h.mu.Unlock()
		var touch []engine.Presence
		exp := now.Add(2 * h.cfg.Heartbeat)
		// A heartbeat still waiting after this long has no writer: the
		// transport gave up on the stream without closing it.
		orphan := max(3*h.cfg.Heartbeat, time.Minute)
		for _, s := range all {
			if s.beat(now) > orphan {
				h.log.Warn("stream: closing a stream nobody reads", "org", s.sub.Org, "user", s.sub.User, "device", s.sub.Device)
				s.Close()
				continue
			}
			if s.watch {
				if s.sub.Check != nil && !now.Before(s.nextCheck) {
					s.nextCheck = now.Add(h.cfg.Recheck)
					h.recheck(s)
				}
				continue
			}
			touch = append(touch, engine.Presence{Org: s.sub.Org, User: s.sub.User, Device: s.sub.Device, Instance: h.cfg.Instance, Expires: exp})
			if s.sub.Check != nil && !now.Before(s.nextCheck) {
				s.nextCheck = now.Add(h.cfg.Recheck)
				h.recheck(s)
			}
		}
		if h.cfg.Presence != nil && len(touch) > 0 {
			// One update renews every record of the instance; the records
			// are written again only when some are missing (they expired
			// while the store was unreachable and another instance's Leave
			// removed them).
			ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
			n, err := h.cfg.Presence.Renew(ctx, h.cfg.Instance, exp)
			if err == nil && n < len(touch) {
				err = h.cfg.Presence.Touch(ctx, touch)
			}
			if err != nil && h.ctx.Err() == nil {
				h.log.Warn("stream: renew presence", "streams", len(touch), "err", err)
			}
			cancel()
		}
	}
}

// recheck runs s's access check on a bounded pool: a disabled user's
// stream ends, a changed read set re-keys it and pokes (its next pull
// starts over).
func (h *Hub) recheck(s *Stream) {
	select {
	case h.checks <- struct{}{}:
	case <-h.ctx.Done():
		return
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		defer func() { <-h.checks }()
		ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
		defer cancel()
		keys, err := s.sub.Check(ctx)
		if err != nil {
			switch engine.ErrorKind(err) {
			case engine.KindUnauthorized, engine.KindForbidden:
				code, msg := engine.CodeForbidden, "access was withdrawn"
				var e *engine.Error
				if asError(err, &e) {
					code, msg = e.Code, e.Message
				}
				s.end(code, msg)
			default:
				if h.ctx.Err() == nil {
					h.log.Warn("stream: re-check access", "org", s.sub.Org, "user", s.sub.User, "err", err)
				}
			}
			return
		}
		h.mu.Lock()
		changed := !slices.Equal(keys, s.keys)
		if changed {
			s.keys = slices.Clone(keys)
		}
		head := int64(0)
		if s.org != nil {
			head = s.org.head
		}
		h.mu.Unlock()
		if changed {
			s.poke(head)
		}
	}()
}

// join queues a presence record to write (true) or delete (false).
func (h *Hub) join(dk devKey, on bool) {
	if h.cfg.Presence == nil {
		return
	}
	h.pmu.Lock()
	h.pjoin[dk] = on
	h.pmu.Unlock()
	signal(h.pkick)
}

// presence writes queued presence changes in batches, and removes this
// instance's records when the hub closes.
func (h *Hub) presence() {
	defer h.wg.Done()
	if h.cfg.Presence == nil {
		<-h.ctx.Done()
		return
	}
	flush := func(ctx context.Context, final bool) {
		h.pmu.Lock()
		q := h.pjoin
		h.pjoin = map[devKey]bool{}
		h.pmu.Unlock()
		now := h.cfg.Now()
		var touch, leave []engine.Presence
		for dk, on := range q {
			p := engine.Presence{Org: dk.org, User: dk.user, Device: dk.device, Instance: h.cfg.Instance, Expires: now.Add(2 * h.cfg.Heartbeat)}
			if on && !final {
				touch = append(touch, p)
			} else {
				leave = append(leave, p)
			}
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if final {
			// Every record of this instance expires now, and the Leave
			// below removes every expired record: nothing of this instance
			// survives it, whatever an interrupted flush left behind.
			if _, err := h.cfg.Presence.Renew(cctx, h.cfg.Instance, now.Add(-time.Second)); err != nil {
				h.log.Warn("stream: remove presence", "err", err)
			}
		}
		if err := h.cfg.Presence.Touch(cctx, touch); err != nil && ctx.Err() == nil {
			h.log.Warn("stream: write presence", "err", err)
		}
		if len(leave) > 0 || final {
			// Interrupted by Close, these are removed by the final flush.
			if err := h.cfg.Presence.Leave(cctx, leave, now); err != nil && ctx.Err() == nil {
				h.log.Warn("stream: remove presence", "err", err)
			}
		}
	}
	for {
		select {
		case <-h.ctx.Done():
			flush(context.Background(), true)
			return
		case <-h.pkick:
		}
		flush(h.ctx, false)
	}
}
