// Package mongodb is the fieldsync store for MongoDB (and wire-compatible
// servers such as FerretDB). It implements sync.Store without multi-document
// transactions and must not know about HTTP, SQLite or any other adapter.
//
// Collections:
//   - docs: the latest state of every document, with the keys and outcomes of
//     the last mutations applied to it (recent), written by one conditional
//     replace per document: the atomic commit point of a mutation.
//   - feed: one row per (scope, document), the document's latest change under
//     that scope, with the change's body denormalised into it.
//   - seqlog: one record per allocated sequence number of an organisation,
//     inserted after the change's feed rows (a commit marker) or by a reader
//     that gave up waiting for it (void). Its unique _id is what makes a late
//     writer and a voiding reader agree on who owns a number.
//   - counters: the per-organisation sequence counter, and beside it the
//     organisation's resolved prefix, which readers share (pull.go).
//   - mutations: recorded outcomes (a cache for mutations that changed a
//     document, the only record for rejections).
//   - secrets: server secrets shared by every instance.
//
// Readers deliver only up to the gap-free prefix of an organisation's
// seqlog, reading the caller's scopes by position; see pull.go.
package mongodb

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/fieldsync/fieldsync/sync/engine"
)

var _ engine.Store = (*Store)(nil)

// Options tune the store; the zero value is the production setting.
type Options struct {
	// Grace is how long a reader waits for the writer of a missing sequence
	// number before voiding it (default 2 s). A writer slower than this
	// simply moves its change to a new number.
	Grace time.Duration
	// Timeout bounds every single database call (default 10 s).
	Timeout time.Duration
	// Now is the clock of the gap bookkeeping (default time.Now).
	Now func() time.Time
	// Monitor, when set, sees every command the driver sends: for metrics
	// and for tests that count round trips.
	Monitor *event.CommandMonitor

	// afterAllocate, when set, runs in every write round of a push right
	// after its seqs were allocated, before anything is written: tests use
	// it to make a writer slow at the worst moment. Nil in production.
	afterAllocate func(ctx context.Context, org string, seqs []int64)
	// window, when set, replaces the markers one read of the seqlog
	// returns while the resolved prefix moves (tests make a long log with
	// few records).
	window int
}

// Store is the MongoDB implementation of sync.Store.
type Store struct {
	client   *mongo.Client
	db       *mongo.Database
	docs     *mongo.Collection
	feed     *mongo.Collection
	seqlog   *mongo.Collection
	counters *mongo.Collection
	muts     *mongo.Collection
	secrets  *mongo.Collection
	presence *mongo.Collection                // stream.go
	onPush   atomic.Pointer[func(org string)] // stream.go
	opt      Options

	allocs sync.Map // org -> *orgAlloc: see allocate
	gapMu  sync.Mutex
	gaps   map[gapKey]time.Time // first time a reader saw a missing seq

	hist      *mongo.Collection // retention.go
	floorMu   sync.Mutex
	floorSeen map[string]floorSeen // org -> its announced floor, as last read
}

type gapKey struct {
	org string
	seq int64
}

// sep joins the parts of compound _id strings. It is a control character
// that no organisation, collection, user, device or document id contains in
// practice, and unlike NUL it survives every JSON-based backend.
const sep = "\x1f"

// Open connects to uri, uses database dbName and creates the indexes the
// store needs (idempotently).
func Open(ctx context.Context, uri, dbName string, opt Options) (*Store, error) {
	if opt.Grace <= 0 {
		opt.Grace = 2 * time.Second
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 10 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	copt := options.Client().ApplyURI(uri).SetTimeout(opt.Timeout)
	if opt.Monitor != nil {
		copt.SetMonitor(opt.Monitor)
	}
	client, err := mongo.Connect(copt)
	if err != nil {
		return nil, translate(fmt.Errorf("mongodb: connect: %w", err))
	}
	// Majority read and write concerns: an acknowledged push survives a
	// primary failover, and a reader never builds its committed prefix
	// from writes that may still be rolled back.
	db := client.Database(dbName, options.Database().
		SetWriteConcern(writeconcern.Majority()).
		SetReadConcern(readconcern.Majority()))
	s := &Store{client: client, db: db, opt: opt, gaps: map[gapKey]time.Time{}, floorSeen: map[string]floorSeen{},
		hist: db.Collection("history"),
		docs: db.Collection("docs"), feed: db.Collection("feed"), seqlog: db.Collection("seqlog"),
		counters: db.Collection("counters"), muts: db.Collection("mutations"), secrets: db.Collection("secrets")}
	err = s.createIndexes(ctx)
	if err == nil {
		err = s.ensureStreamIndexes(ctx) // stream.go
	}
	if err == nil {
		err = s.ensureWorkflowIndexes(ctx) // workflow.go
	}
	if err == nil {
		err = s.ensurePushIndexes(ctx) // notify.go
	}
	if err != nil {
		client.Disconnect(context.Background())
		return nil, err
	}
	return s, nil
}

func (s *Store) createIndexes(ctx context.Context) error {
	idx := []struct {
		c    *mongo.Collection
		keys bson.D
	}{
		{s.feed, bson.D{{Key: "org", Value: 1}, {Key: "scope", Value: 1}, {Key: "seq", Value: 1}}},
		{s.seqlog, bson.D{{Key: "org", Value: 1}, {Key: "seq", Value: 1}}},
		{s.docs, bson.D{{Key: "org", Value: 1}, {Key: "seq", Value: 1}}},
		// Retention (retention.go): the rows of a void seq, old outcomes.
		{s.feed, bson.D{{Key: "org", Value: 1}, {Key: "seq", Value: 1}}},
		{s.muts, bson.D{{Key: "at", Value: 1}}},
	}
	for _, i := range idx {
		cctx, cancel := s.call(ctx)
		_, err := i.c.Indexes().CreateOne(cctx, mongo.IndexModel{Keys: i.keys})
		cancel()
		if err != nil {
			return translate(fmt.Errorf("mongodb: create index on %s: %w", i.c.Name(), err))
		}
	}
	if err := s.createIdentityIndexes(ctx); err != nil { // identity.go
		return err
	}
	if err := s.createServiceAccountIndexes(ctx); err != nil { // serviceaccounts.go
		return err
	}
	return s.createWebhookIndexes(ctx) // webhook.go
}

// call gives one database call its own deadline.
func (s *Store) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.opt.Timeout)
}

// Close disconnects; it is safe to call more than once.
func (s *Store) Close() error {
	if s.client == nil {
		return nil
	}
	c := s.client
	s.client = nil
	ctx, cancel := context.WithTimeout(context.Background(), s.opt.Timeout)
	defer cancel()
	if err := c.Disconnect(ctx); err != nil && !errors.Is(err, mongo.ErrClientDisconnected) {
		return translate(err)
	}
	return nil
}

// Ping implements sync.Store.
func (s *Store) Ping(ctx context.Context) error {
	cctx, cancel := s.call(ctx)
	defer cancel()
	return translate(s.db.RunCommand(cctx, bson.D{{Key: "ping", Value: 1}}).Err())
}

// Secret implements sync.Store: the first instance to ask inserts it, every
// other one reads the same value.
func (s *Store) Secret(ctx context.Context, name string, n int) ([]byte, error) {
	fresh := make([]byte, n)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	var got struct {
		Value []byte `bson:"value"`
	}
	// Two instances upserting at once: one of them may get a duplicate key,
	// and then the value exists, so the second attempt reads it.
	for attempt := 0; ; attempt++ {
		cctx, cancel := s.call(ctx)
		err := s.secrets.FindOneAndUpdate(cctx, bson.D{{Key: "_id", Value: name}},
			bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "value", Value: fresh}}}},
			options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)).Decode(&got)
		cancel()
		if err == nil {
			return got.Value, nil
		}
		if !mongo.IsDuplicateKeyError(err) || attempt > 0 {
			return nil, translate(err)
		}
	}
}

// translate maps driver errors to the engine's kinds.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var e *engine.Error
	if errors.As(err, &e) {
		return err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), mongo.IsTimeout(err):
		return engine.Wrap(err, engine.KindUnavailable, engine.CodeUnavailable, "the store did not answer in time")
	case mongo.IsNetworkError(err), errors.Is(err, mongo.ErrClientDisconnected):
		return engine.Wrap(err, engine.KindUnavailable, engine.CodeUnavailable, "the store is unavailable")
	case errors.Is(err, mongo.ErrNoDocuments):
		return engine.Wrap(err, engine.KindNotFound, engine.CodeNotFound, "not found")
	case mongo.IsDuplicateKeyError(err):
		return engine.Wrap(err, engine.KindConflict, engine.CodeAlreadyExists, "already exists")
	}
	return err
}

var errBusy = &engine.Error{Kind: engine.KindUnavailable, Code: engine.CodeUnavailable,
	Message: "the store is too busy to commit the batch; retry"}
