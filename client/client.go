// Package client is the reference fieldsync device: it keeps a local copy of
// the documents in a user's scope, records edits made offline as a queue of
// mutations, pushes that queue and pulls the change feed as
// docs/protocol.md describes. It is the model for the mobile SDKs and the
// driver of convergence tests and load tools. Admin is the same package's
// client of the admin API for operator tools, and its types are that API's
// wire format, which the server encodes.
//
// It owns the device side of the protocol: the local state (server copies,
// pull checkpoint, mutation queue) and how it survives crashes (LocalStore,
// one atomic Save per change), mutation ids that are never reused, the
// base_version of each edit, and retries with backoff. It speaks plain
// net/http and may import the engine package for the wire types only; it
// must not import Fiber, the server or any store adapter.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// Errors of local edits.
var (
	ErrNotFound = errors.New("client: no such document")
	ErrExists   = errors.New("client: document id already used")
	ErrInvalid  = errors.New("client: invalid edit")
)

// Config configures a Client. Zero fields take the documented defaults.
type Config struct {
	// BaseURL is the server, e.g. "https://sync.example.com".
	BaseURL string
	// Token returns the access token for each request, so a refreshed
	// token is picked up on the next attempt (see StaticToken). Nil sends
	// no Authorization header.
	Token func() string
	// DeviceID names this installation (1-128 characters of [A-Za-z0-9_.:-]).
	DeviceID string
	// Store keeps the state between runs (default: a new MemoryStore).
	Store LocalStore
	// HTTPClient sends the requests (default: 60 s timeout). Tests wrap its
	// Transport, for example in a FaultTransport.
	HTTPClient *http.Client
	// BatchSize is the number of mutations per push (default 100; the
	// server accepts at most 500 by default).
	BatchSize int
	// PageSize is the pull limit (default 100).
	PageSize int

	// OnConflict is called after a push for every merged mutation with
	// conflicts, once its outcome is saved. It must not call Push or Pull.
	OnConflict func(engine.Mutation, engine.Outcome)
	// OnReject is called after a push for every rejected mutation, once
	// its removal is saved. It must not call Push or Pull.
	OnReject func(engine.Mutation, engine.Outcome)
	// OnOutcome is called after a push for every acknowledged mutation,
	// whatever its status, once its outcome is saved, and before OnConflict
	// or OnReject; tests keep a ledger of outcomes with it. It must not call
	// Push or Pull.
	OnOutcome func(engine.Mutation, engine.Outcome)

	// BackoffInitial is the wait before the first retry (default 100 ms);
	// each further retry doubles it up to BackoffMax (default 10 s).
	BackoffInitial time.Duration
	BackoffMax     time.Duration
	// Jitter is the fraction of each wait that is random, so devices that
	// failed together do not retry together (default 0.5; negative: none).
	Jitter float64
	// MaxRetries bounds the retries of one request (default 0: retry until
	// the context ends).
	MaxRetries int
	// Sleep waits d or until ctx ends; tests inject an instant one.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the device's clock, sent with every push as device_time
	// (default time.Now); tests inject a wrong one.
	Now func() time.Time

	// MutationIDPrefix replaces the random per-store prefix of mutation ids.
	// Only for tests that want readable ids: the prefix must never be used
	// again with another store of the same device.
	MutationIDPrefix string
	// NewID makes document ids for NewID (default: a ULID).
	NewID func() string
}

// StaticToken is a Config.Token that always returns tok.
func StaticToken(tok string) func() string { return func() string { return tok } }

// Client is one device. Its methods are safe for concurrent use: local edits
// and reads may run while a push or pull waits on the network, and pushes
// and pulls run one at a time.
type Client struct {
	cfg  Config
	base string // BaseURL without a trailing slash

	net sync.Mutex // held for a whole Push, Pull or ResetCheckpoint

	mu     sync.Mutex // guards the fields below
	state  State
	prefix string
	broken error // set when memory and store disagree; every later call fails
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)

// maxPrefix keeps "<prefix>-<counter>" within the 128 characters of a mutation id.
const maxPrefix = 128 - 1 - 20

// New opens a device on cfg.Store.
func New(cfg Config) (*Client, error) {
	if _, err := url.ParseRequestURI(cfg.BaseURL); err != nil || cfg.BaseURL == "" {
		return nil, fmt.Errorf("client: BaseURL %q is not a URL", cfg.BaseURL)
	}
	if !idPattern.MatchString(cfg.DeviceID) {
		return nil, fmt.Errorf("client: DeviceID must be 1-128 characters of A-Z a-z 0-9 _ . : -, got %q", cfg.DeviceID)
	}
	if cfg.MutationIDPrefix != "" && (len(cfg.MutationIDPrefix) > maxPrefix || !idPattern.MatchString(cfg.MutationIDPrefix)) {
		return nil, fmt.Errorf("client: MutationIDPrefix must be 1-%d characters of A-Z a-z 0-9 _ . : -", maxPrefix)
	}
	if cfg.Store == nil {
		cfg.Store = NewMemoryStore()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 100
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 100
	}
	if cfg.BackoffInitial <= 0 {
		cfg.BackoffInitial = 100 * time.Millisecond
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 10 * time.Second
	}
	if cfg.Jitter == 0 {
		cfg.Jitter = 0.5
	}
	cfg.Jitter = min(cfg.Jitter, 1)
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = func() string { return ulid.Make().String() }
	}

	st, err := cfg.Store.Load()
	if err != nil {
		return nil, err
	}
	st.normalize()
	fresh := st.DeviceID == ""
	switch {
	case fresh:
		st.DeviceID = cfg.DeviceID
	case st.DeviceID != cfg.DeviceID:
		return nil, fmt.Errorf("client: the store belongs to device %q, not %q", st.DeviceID, cfg.DeviceID)
	}
	if st.MutationPrefix == "" {
		st.MutationPrefix = "m" + ulid.Make().String()
		fresh = true
	}
	if fresh {
		if err := cfg.Store.Save(st); err != nil {
			return nil, err
		}
	}
	c := &Client{cfg: cfg, base: strings.TrimRight(cfg.BaseURL, "/"), state: st, prefix: st.MutationPrefix}
	if cfg.MutationIDPrefix != "" {
		c.prefix = cfg.MutationIDPrefix
	}
	return c, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// DeviceID returns the device id.
func (c *Client) DeviceID() string { return c.cfg.DeviceID }

// NewID returns a fresh document id for Create.
func (c *Client) NewID() string { return c.cfg.NewID() }

// lock takes the state lock, failing if an earlier save left memory and
// store apart.
func (c *Client) lock() error {
	c.mu.Lock()
	if c.broken != nil {
		c.mu.Unlock()
		return c.broken
	}
	return nil
}

// saveLocked persists the state after an in-place change. If the save fails
// the state is reloaded from the store, so memory never runs ahead of what
// survives a crash (a mutation id must not be sent before its counter is
// saved). If even that fails, the Client refuses all further work.
func (c *Client) saveLocked() error {
	err := c.cfg.Store.Save(c.state)
	if err == nil {
		return nil
	}
	st, lerr := c.cfg.Store.Load()
	if lerr != nil {
		c.broken = fmt.Errorf("client: state could not be saved nor reloaded; reopen the client: %w", errors.Join(err, lerr))
		return c.broken
	}
	st.normalize()
	c.state = st
	return err
}

// Create records the creation of a document. doc must encode as a JSON
// object; id should come from NewID. It fails with ErrExists if the device
// knows the id already (ids are never reused, even after a delete).
func (c *Client) Create(coll, id string, doc any) error {
	raw, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return fmt.Errorf("%w: a document must be a JSON object", ErrInvalid)
	}
	if err := checkIDs(coll, id); err != nil {
		return err
	}
	if err := c.lock(); err != nil {
		return err
	}
	defer c.mu.Unlock()
	if c.state.known(coll, id) {
		return fmt.Errorf("%w: %s/%s", ErrExists, coll, id)
	}
	return c.enqueueLocked(engine.Mutation{Collection: coll, DocID: id, Op: engine.OpCreate, Doc: raw})
}

// Update records a change of top-level fields of a visible document; a nil
// value removes the field.
func (c *Client) Update(coll, id string, fields map[string]any) error {
	if len(fields) == 0 {
		return fmt.Errorf("%w: an update needs at least one field", ErrInvalid)
	}
	raw := make(map[string]json.RawMessage, len(fields))
	for k, v := range fields {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("%w: field %q: %w", ErrInvalid, k, err)
		}
		raw[k] = b
	}
	return c.enqueueExisting(engine.Mutation{Collection: coll, DocID: id, Op: engine.OpUpdate, Fields: raw})
}

// Delete records the deletion of a visible document.
func (c *Client) Delete(coll, id string) error {
	return c.enqueueExisting(engine.Mutation{Collection: coll, DocID: id, Op: engine.OpDelete})
}

// enqueueExisting queues an update or delete of a visible document, based
// on the version the device holds.
func (c *Client) enqueueExisting(m engine.Mutation) error {
	if err := checkIDs(m.Collection, m.DocID); err != nil {
		return err
	}
	if err := c.lock(); err != nil {
		return err
	}
	defer c.mu.Unlock()
	if _, ok := c.state.visible(m.Collection, m.DocID); !ok {
		return fmt.Errorf("%w: %s/%s", ErrNotFound, m.Collection, m.DocID)
	}
	m.BaseVersion = c.baseVersionLocked(m.Collection, m.DocID)
	return c.enqueueLocked(m)
}

func checkIDs(coll, id string) error {
	if coll == "" {
		return fmt.Errorf("%w: empty collection", ErrInvalid)
	}
	if !idPattern.MatchString(id) {
		return fmt.Errorf("%w: id must be 1-128 characters of A-Z a-z 0-9 _ . : -, got %q", ErrInvalid, id)
	}
	return nil
}

// baseVersionLocked is the base_version of an update or delete of a visible
// document: the newest server version the device knows, from its server copy
// or from its own acknowledged mutations (an acknowledged change is part of
// what the user edited from, even before the pull brings it). A document
// visible only through the device's own pending create gets 1, the version
// that create will be stored as. The server never counts the device's own
// changes as conflicts, so several queued edits may share one base.
func (c *Client) baseVersionLocked(coll, id string) int64 {
	return max(c.state.knownVersion(coll, id), 1)
}

// enqueueLocked gives m the next mutation id and saves it with the queue.
func (c *Client) enqueueLocked(m engine.Mutation) error {
	c.state.MutationSeq++
	m.ID = c.prefix + "-" + strconv.FormatUint(c.state.MutationSeq, 10)
	c.state.Queue = append(c.state.Queue, Pending{Mutation: m})
	return c.saveLocked()
}

// Get returns a document as the user sees it: the server copy with the
// device's not yet pulled and pending changes applied.
func (c *Client) Get(coll, id string) (json.RawMessage, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	doc, ok := c.state.visible(coll, id)
	return clone(doc), ok
}

// Docs returns every visible document of a collection, by id.
func (c *Client) Docs(coll string) map[string]json.RawMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.state.visibleCollection(coll)
	for id, d := range out {
		out[id] = clone(d)
	}
	return out
}

// Pending returns the number of mutations not yet acknowledged by the server.
func (c *Client) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.state.Queue)
}

// Checkpoint returns the saved pull checkpoint.
func (c *Client) Checkpoint() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.Checkpoint
}

// ServerState returns a copy of the server copies only, for tests that
// compare devices with each other or with the server.
func (c *Client) ServerState() map[string]map[string]Doc {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]map[string]Doc, len(c.state.Docs))
	for coll, docs := range c.state.Docs {
		m := make(map[string]Doc, len(docs))
		for id, d := range docs {
			m[id] = Doc{Version: d.Version, Doc: clone(d.Doc)}
		}
		out[coll] = m
	}
	return out
}

func clone(b json.RawMessage) json.RawMessage {
	if b == nil {
		return nil
	}
	return append(json.RawMessage(nil), b...)
}
