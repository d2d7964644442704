package mongodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/sync/feed"
)

// state is one document as the batch sees it.
type state struct {
	key docKey
	doc *engine.Document // nil while the document does not exist
	// What the database holds now, for the conditional write.
	exists             bool
	storedV, storedSeq int64
	baseFeed           map[string]feed.Pos // feed before this batch's change
	recent             []recentMut         // as stored

	muts  []int       // indexes of the batch's mutations on this document
	dirty bool        // doc must be written
	added []recentMut // recent entries this batch adds
	seq   int64       // seq of this round's write
	feed  map[string]feed.Pos
}

// maxRounds bounds the retries of a batch that keeps losing races (a
// concurrent writer on the same document, a reader voiding its seq).
const maxRounds = 20

// Push implements sync.Store. Without transactions, the commit point of a
// mutation is the conditional replace of its document, which also records
// the mutation's key and outcome in the document's recent list. Everything
// else is derived and idempotent:
//
//  1. one find of recorded outcomes;
//  2. one find of the current documents (whose recent lists are recorded
//     outcomes too);
//  3. decide in memory, in batch order;
//  4. one $inc allocating a block of seqs, one per document to write;
//  5. one bulk write of the documents, each conditional on the version and
//     seq loaded (a miss means another server won: reload, re-decide);
//  6. one insertMany of the feed rows, then, for rows that already exist
//     (updates, evictions), one bulk replace conditional on moving forward;
//  7. one insertMany of the seqlog commit markers (and voids for seqs that
//     lost a race); a duplicate key means a reader voided the seq while this
//     writer was slow (or, on FerretDB, whose $inc is not atomic, another
//     instance was handed the same seq), so the change moves to a new seq
//     (back to 4, after one read of the markers in the way);
//  8. one insertMany of the outcomes into mutations, skipped when there is
//     nothing to record (applied creates are recorded by docs.origin_*).
//
// Without races a batch of creates costs 6 round trips and a batch with
// updates 8, whatever its size.
func (s *Store) Push(ctx context.Context, b engine.PushBatch, decide engine.Decide) ([]engine.Outcome, error) {
	org := b.Actor.Org
	defer s.afterPush(org) // stream.go
	n := len(b.Mutations)
	outs := make([]engine.Outcome, n)
	settled := make([]bool, n) // outcome known without deciding
	mkey := func(i int) string { return b.Actor.User + sep + b.Device + sep + b.Mutations[i].ID }
	mutID := func(i int) string { return org + sep + mkey(i) }
	r := &run{b: b, decide: decide, muts: slices.Clip(b.Mutations), outs: outs, mkey: mkey}

	// 1. Recorded outcomes.
	ids := make([]string, n)
	for i := range b.Mutations {
		ids[i] = mutID(i)
	}
	recorded, err := s.loadOutcomes(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i := range b.Mutations {
		if o, ok := recorded[mutID(i)]; ok {
			outs[i], settled[i] = o, true
		}
	}

	// 2. Current documents.
	states := map[docKey]*state{}
	var order []*state
	for i, m := range b.Mutations {
		if settled[i] {
			continue
		}
		k := docKey{m.Collection, m.DocID}
		st := states[k]
		if st == nil {
			st = &state{key: k}
			states[k] = st
			order = append(order, st)
		}
		st.muts = append(st.muts, i)
	}
	parents := make([]*state, len(b.Parents)) // read with them, in the same find
	for i, p := range b.Parents {
		parents[i] = &state{key: docKey{p.Collection, p.ID}}
	}
	if err := s.loadStates(ctx, org, append(slices.Clip(order), parents...)); err != nil {
		return nil, err
	}
	if b.Snapshot != nil {
		snap := make(map[engine.DocRef]*engine.Document, len(parents))
		for _, st := range parents {
			if d := st.current(); d != nil {
				snap[engine.DocRef{Collection: st.key.coll, ID: st.key.id}] = d
			}
		}
		// Another instance may write them before this batch commits: the
		// engine checks them again after the commit.
		b.Snapshot(snap, false)
	}

	// 3. Decide, then the server's writes that follow (PushBatch.Then):
	// one more find per round of them.
	for _, st := range order {
		r.decideDoc(st)
	}
	if b.Then != nil {
		var err error
		if order, err = s.thenRounds(ctx, r, states, order); err != nil {
			return nil, err
		}
	}

	// 4-7. Write until every changed document is committed at a seq no
	// reader voided.
	wctx := context.WithoutCancel(ctx) // a half-written batch is finished, not abandoned
	var pending []*state
	for _, st := range order {
		if st.dirty {
			pending = append(pending, st)
		}
	}
	var voids []int64
	for round := 0; len(pending) > 0 || len(voids) > 0; round++ {
		if round >= maxRounds {
			return nil, errBusy
		}
		pending, voids, err = s.writeRound(wctx, r, org, pending, voids)
		if err != nil {
			return nil, err
		}
	}

	// 8. Outcomes. An applied create is recorded by the document's origin.
	var recs []any
	now := s.opt.Now().UnixMilli()
	for i, m := range b.Mutations {
		if settled[i] || (m.Op == engine.OpCreate && outs[i].Status == engine.StatusApplied) {
			continue
		}
		enc, err := json.Marshal(outs[i])
		if err != nil {
			return nil, err
		}
		recs = append(recs, bson.D{{Key: "_id", Value: mutID(i)}, {Key: "org", Value: org},
			{Key: "o", Value: string(enc)}, {Key: "at", Value: now}})
	}
	if err := s.insertIgnoringDups(wctx, s.muts, recs); err != nil {
		return nil, err
	}
	return outs, nil
}

// run is one batch on its way through Push: the device's mutations, then
// the server's writes that follow from them (PushBatch.Then), which have no
// outcome of their own.
type run struct {
	b      engine.PushBatch
	decide engine.Decide
	muts   []engine.Mutation // the batch's, then the effects'
	outs   []engine.Outcome  // the batch's only
	mkey   func(int) string
}

// decideDoc decides the mutations of one document in batch order, from the
// state in st (as loaded).
func (r *run) decideDoc(st *state) {
	st.dirty, st.added = false, nil
	applied := map[string]string{}
	for _, rm := range st.recent {
		applied[rm.Key] = rm.Outcome
	}
	for _, i := range st.muts {
		r.decideOne(st, i, applied)
	}
}

// decideOne decides mutation i over the state st holds. applied are the
// outcomes recorded on the document, by mutation key.
func (r *run) decideOne(st *state, i int, applied map[string]string) {
	if i >= len(r.outs) {
		// A server write that follows from the batch: nothing to record.
		if next, _ := r.decide(i, st.current()); next != nil {
			st.doc, st.dirty = next, true
		}
		return
	}
	if enc, ok := applied[r.mkey(i)]; ok {
		var o engine.Outcome
		if json.Unmarshal([]byte(enc), &o) == nil {
			r.outs[i] = o
			return
		}
	}
	next, out := r.decide(i, st.current())
	r.outs[i] = out
	if next == nil {
		return
	}
	enc, _ := json.Marshal(out)
	st.doc, st.dirty = next, true
	st.added = append(st.added, recentMut{Key: r.mkey(i), Outcome: string(enc)})
	applied[r.mkey(i)] = string(enc)
}

// current is a copy of the document as the batch left it (nil: none).
func (st *state) current() *engine.Document {
	if st.doc == nil {
		return nil
	}
	c := *st.doc
	return &c
}

// thenRounds asks the batch for the writes that follow from what it
// decided, loads the documents they touch and decides them, round after
// round, and returns every state the batch now touches.
func (s *Store) thenRounds(ctx context.Context, r *run, states map[docKey]*state, order []*state) ([]*state, error) {
	var written []*engine.Document
	for _, st := range order {
		if st.dirty {
			written = append(written, st.doc)
		}
	}
	for round := 0; ; round++ {
		more, err := r.b.Then(written)
		if err != nil {
			return nil, err
		}
		if len(more) == 0 {
			return order, nil
		}
		if round == engine.MaxThenRounds {
			return nil, fmt.Errorf("mongodb: the batch's effects did not settle in %d rounds", engine.MaxThenRounds)
		}
		var fresh []*state
		for _, m := range more {
			k := docKey{m.Collection, m.DocID}
			if states[k] == nil {
				st := &state{key: k}
				states[k] = st
				order = append(order, st)
				fresh = append(fresh, st)
			}
		}
		if err := s.loadStates(ctx, r.b.Actor.Org, fresh); err != nil {
			return nil, err
		}
		written = nil
		for _, m := range more {
			i := len(r.muts)
			r.muts = append(r.muts, m)
			st := states[docKey{m.Collection, m.DocID}]
			st.muts = append(st.muts, i)
			before := st.doc
			r.decideOne(st, i, nil)
			if st.doc != before {
				written = append(written, st.doc)
			}
		}
	}
}

// writeRound runs steps 4-7 once for pending, and returns the documents
// that must go round again and the seqs to void.
func (s *Store) writeRound(ctx context.Context, r *run, org string, pending []*state, voids []int64) ([]*state, []int64, error) {
	var next []*state
	var written []*state
	if len(pending) > 0 {
		// 4. Allocate.
		hi, err := s.allocate(ctx, org, int64(len(pending)))
		if err != nil {
			return nil, nil, err
		}
		for j, st := range pending {
			st.seq = hi - int64(len(pending)) + 1 + int64(j)
			st.doc.Seq = st.seq
			st.feed = feed.Move(st.baseFeed, st.doc.Scopes, st.seq)
		}
		if s.opt.afterAllocate != nil {
			seqs := make([]int64, len(pending))
			for j, st := range pending {
				seqs[j] = st.seq
			}
			s.opt.afterAllocate(ctx, org, seqs)
		}
		// 5. Conditional document writes.
		models := make([]mongo.WriteModel, 0, len(pending))
		for _, st := range pending {
			rec, err := st.record(org)
			if err != nil {
				return nil, nil, err
			}
			if st.exists {
				models = append(models, mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: rec.ID},
					{Key: "version", Value: st.storedV}, {Key: "seq", Value: st.storedSeq}}).SetReplacement(rec))
			} else {
				models = append(models, mongo.NewInsertOneModel().SetDocument(rec))
			}
		}
		cctx, cancel := s.call(ctx)
		res, err := s.docs.BulkWrite(cctx, models, options.BulkWrite().SetOrdered(false))
		cancel()
		if err != nil && !onlyDupKeys(err) {
			return nil, nil, translate(err)
		}
		lost := map[*state]bool{}
		if err != nil || res.MatchedCount+res.InsertedCount < int64(len(pending)) {
			// Some write lost a race; the per-write result is not reported
			// for replaces, so read back which ones carry their seq.
			var keys []docKey
			for _, st := range pending {
				keys = append(keys, st.key)
			}
			cur, err := s.findDocs(ctx, org, keys)
			if err != nil {
				return nil, nil, err
			}
			for _, st := range pending {
				d, ok := cur[st.key]
				if ok && d.Seq == st.seq {
					continue
				}
				lost[st] = true
				voids = append(voids, st.seq)
				st.reset(d)
				r.decideDoc(st)
				if st.dirty {
					next = append(next, st)
				}
			}
		}
		for _, st := range pending {
			if lost[st] {
				continue
			}
			st.exists, st.storedV, st.storedSeq = true, st.doc.Version, st.seq
			st.recent = st.newRecent()
			st.added = nil
			written = append(written, st)
		}
		// 6. Feed rows.
		var frs []feedRec
		for _, st := range written {
			frs = append(frs, st.feedRecs(org)...)
		}
		if err := s.upsertFeed(ctx, frs); err != nil {
			return nil, nil, err
		}
	}
	// 7. Commit markers and voids.
	var markers []any
	for _, st := range written {
		markers = append(markers, seqRec{ID: seqID(org, st.seq), Org: org, Seq: st.seq, Coll: st.key.coll, DocID: st.key.id})
	}
	for _, v := range voids {
		markers = append(markers, seqRec{ID: seqID(org, v), Org: org, Seq: v, Void: true})
	}
	dups, err := s.insertMany(ctx, s.seqlog, markers)
	if err != nil {
		return nil, nil, err
	}
	var taken []string
	for _, j := range dups {
		if j < len(written) {
			taken = append(taken, seqID(org, written[j].seq))
		}
	}
	if len(taken) > 0 {
		// A reader got there first: either it voided the seq (move the change
		// to a new one) or it found the document and committed it for us.
		cctx, cancel := s.call(ctx)
		cur, err := s.seqlog.Find(cctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: taken}}}})
		if err != nil {
			cancel()
			return nil, nil, translate(err)
		}
		var got []seqRec
		err = cur.All(cctx, &got)
		cancel()
		if err != nil {
			return nil, nil, translate(err)
		}
		// On a server whose $inc is not atomic (FerretDB), two writers can
		// also be handed the same seq: the one not named by the marker moves.
		owner := map[int64]seqRec{}
		for _, r := range got {
			owner[r.Seq] = r
		}
		for _, j := range dups {
			if j >= len(written) {
				continue
			}
			st := written[j]
			if r := owner[st.seq]; r.Void || r.Coll != st.key.coll || r.DocID != st.key.id {
				next = append(next, st) // rewritten at a new seq, conditional on this one
			}
		}
	}
	return next, nil, nil
}

// reset replaces the state with the document now stored (nil: none).
func (st *state) reset(d *loaded) {
	*st = state{key: st.key, muts: st.muts}
	if d != nil {
		st.load(d)
	}
}

// record is the stored form of the state's document at st.seq.
func (st *state) record(org string) (*docRec, error) {
	d := st.doc
	fields, err := json.Marshal(d.Fields)
	if err != nil {
		return nil, err
	}
	feed, err := json.Marshal(st.feed)
	if err != nil {
		return nil, err
	}
	return &docRec{ID: docKeyID(org, st.key.coll, st.key.id), Org: org, Coll: st.key.coll, DocID: st.key.id,
		Owner: d.Owner, Version: d.Version, Seq: st.seq, Deleted: d.Deleted, Body: bodyString(d),
		Fields: string(fields), Feed: string(feed), UpdatedAt: d.UpdatedAt.UnixMilli(), UpdatedBy: d.UpdatedBy,
		OriginDevice: st.doc.OriginDevice, OriginMID: st.doc.OriginMutation, Recent: st.newRecent()}, nil
}

func (st *state) newRecent() []recentMut {
	r := append(slices.Clone(st.recent), st.added...)
	if len(r) > keepRecent {
		r = r[len(r)-keepRecent:]
	}
	return r
}

func bodyString(d *engine.Document) *string {
	if d.Body == nil || d.Deleted {
		return nil
	}
	b := string(d.Body)
	return &b
}

// feedRecs are the feed rows that the write at st.seq moved.
func (st *state) feedRecs(org string) []feedRec {
	var out []feedRec
	for scope, f := range st.feed {
		if of, ok := st.baseFeed[scope]; ok && of == f {
			continue
		}
		out = append(out, feedRow(org, scope, st.key, f, st.doc.Version, st.doc.Deleted, bodyString(st.doc)))
	}
	return out
}

func feedRow(org, scope string, k docKey, f feed.Pos, version int64, deleted bool, body *string) feedRec {
	r := feedRec{ID: feedID(org, scope, k.coll, k.id), Org: org, Scope: scope, Seq: f.Seq, Coll: k.coll,
		DocID: k.id, Revoked: f.Revoked}
	if !f.Revoked {
		r.Version, r.Deleted, r.Body = version, deleted, body
	}
	return r
}

// upsertFeed writes feed rows, each only if it moves its row forward: a
// slow writer never puts back an older change over a newer one. Every row
// is first inserted (keyed by _id alone, which every server serves from the
// primary key; FerretDB serves no other filter from an index, so a batch of
// new documents costs no collection scan), and the rows that already exist
// are then replaced on the condition that their seq is lower. Neither step
// relies on an unordered bulk going on after an error: the inserts report
// each duplicate, and the conditional replaces fail none (FerretDB stops an
// unordered update batch at its first error).
func (s *Store) upsertFeed(ctx context.Context, rows []feedRec) error {
	docs := make([]any, len(rows))
	for i, r := range rows {
		docs[i] = r
	}
	dups, err := s.insertMany(ctx, s.feed, docs)
	if err != nil || len(dups) == 0 {
		return err
	}
	models := make([]mongo.WriteModel, 0, len(dups))
	for _, j := range dups {
		r := rows[j]
		// org and scope with _id: the feed's shard key (docs/scaling.md), so
		// the move is routed to one shard, not to every one.
		models = append(models, mongo.NewReplaceOneModel().
			SetFilter(bson.D{{Key: "org", Value: r.Org}, {Key: "scope", Value: r.Scope}, {Key: "_id", Value: r.ID},
				{Key: "seq", Value: bson.D{{Key: "$lt", Value: r.Seq}}}}).
			SetReplacement(r))
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	_, err = s.feed.BulkWrite(cctx, models, options.BulkWrite().SetOrdered(false))
	return translate(err)
}

// allocate takes k sequence numbers of org and returns the highest.
//
// The pushes of one organisation on this instance share their allocations:
// while one $inc is in flight, the others queue, and the next $inc takes
// the numbers of everyone queued at once, so a busy organisation costs one
// counter round trip per batch of pushes, not per push. Organisations never
// wait for each other (no process-wide lock). One $inc per organisation in
// flight per instance also keeps this instance's writers apart on a server
// whose $inc is not atomic (FerretDB); writers of different instances can
// still be handed the same number there, which the commit markers catch.
func (s *Store) allocate(ctx context.Context, org string, k int64) (int64, error) {
	a, _ := s.allocs.LoadOrStore(org, &orgAlloc{})
	return a.(*orgAlloc).take(ctx, k, func(ctx context.Context, n int64) (int64, error) {
		return s.incCounter(ctx, org, n)
	})
}

// orgAlloc queues one organisation's allocations behind its $inc in flight.
type orgAlloc struct {
	mu      sync.Mutex
	running bool
	queue   []*allocReq
}

type allocReq struct {
	k    int64
	done chan struct{}
	hi   int64
	err  error
}

// take returns the highest of k numbers. The caller that finds no $inc in
// flight runs one for everyone queued; whoever queued meanwhile is served
// by the next, which runs in the background so the caller's push goes on.
func (a *orgAlloc) take(ctx context.Context, k int64, inc func(context.Context, int64) (int64, error)) (int64, error) {
	r := &allocReq{k: k, done: make(chan struct{})}
	a.mu.Lock()
	a.queue = append(a.queue, r)
	lead := !a.running
	a.running = true
	a.mu.Unlock()
	if lead {
		// Not the caller's cancellation: the others' numbers ride on it.
		a.serve(context.WithoutCancel(ctx), inc)
	}
	select {
	case <-r.done:
		return r.hi, r.err
	case <-ctx.Done():
		// The numbers it would have got become gaps, voided by readers.
		return 0, ctx.Err()
	}
}

// serve runs one $inc for the queued requests and hands them their ranges.
func (a *orgAlloc) serve(ctx context.Context, inc func(context.Context, int64) (int64, error)) {
	a.mu.Lock()
	batch := a.queue
	a.queue = nil
	a.mu.Unlock()
	var total int64
	for _, q := range batch {
		total += q.k
	}
	hi, err := inc(ctx, total)
	next := hi - total
	for _, q := range batch {
		next += q.k
		q.hi, q.err = next, err
		close(q.done)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.queue) == 0 {
		a.running = false
		return
	}
	go a.serve(ctx, inc)
}

// incCounter takes n numbers of org with one $inc and returns the highest.
func (s *Store) incCounter(ctx context.Context, org string, n int64) (int64, error) {
	var c struct {
		N int64 `bson:"n"`
	}
	// Two first allocations of an organisation race to insert the counter;
	// the loser's upsert is a duplicate key and its retry increments.
	for attempt := 0; ; attempt++ {
		cctx, cancel := s.call(ctx)
		// at is the time of the organisation's latest allocation: a reader
		// finding gaps when nothing was allocated for the grace period voids
		// them at once (pull.go), whenever its process started.
		err := s.counters.FindOneAndUpdate(cctx, bson.D{{Key: "_id", Value: "seq" + sep + org}},
			bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: n}}}, {Key: "$set", Value: bson.D{{Key: "at", Value: s.opt.Now().UnixMilli()}}}},
			options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)).Decode(&c)
		cancel()
		if err == nil {
			return c.N, nil
		}
		if !mongo.IsDuplicateKeyError(err) || attempt >= 3 {
			return 0, translate(err)
		}
	}
}

// highest returns the highest seq allocated in org so far.
func (s *Store) highest(ctx context.Context, org string) (int64, error) {
	n, _, err := s.counter(ctx, org)
	return n, err
}

// counter returns the highest seq allocated in org so far and when the
// latest allocation was made (the zero time for a counter written before
// allocations recorded it: its gaps wait for the grace period in memory).
func (s *Store) counter(ctx context.Context, org string) (int64, time.Time, error) {
	var c struct {
		N  int64 `bson:"n"`
		At int64 `bson:"at"`
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	err := s.counters.FindOne(cctx, bson.D{{Key: "_id", Value: "seq" + sep + org}}).Decode(&c)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, time.Time{}, nil
	}
	if c.At == 0 {
		return c.N, s.opt.Now(), translate(err) // unknown: as if just allocated
	}
	return c.N, time.UnixMilli(c.At), translate(err)
}

func (s *Store) loadOutcomes(ctx context.Context, ids []string) (map[string]engine.Outcome, error) {
	out := map[string]engine.Outcome{}
	if len(ids) == 0 {
		return out, nil
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	cur, err := s.muts.Find(cctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return nil, translate(err)
	}
	var recs []struct {
		ID string `bson:"_id"`
		O  string `bson:"o"`
	}
	if err := cur.All(cctx, &recs); err != nil {
		return nil, translate(err)
	}
	for _, r := range recs {
		var o engine.Outcome
		if err := json.Unmarshal([]byte(r.O), &o); err != nil {
			return nil, fmt.Errorf("mongodb: decode recorded outcome: %w", err)
		}
		out[r.ID] = o
	}
	return out, nil
}

// loaded is a stored document, decoded.
type loaded struct {
	*engine.Document
	rec  docRec
	feed map[string]feed.Pos
}

func (s *Store) findDocs(ctx context.Context, org string, keys []docKey) (map[docKey]*loaded, error) {
	out := map[docKey]*loaded{}
	if len(keys) == 0 {
		return out, nil
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = docKeyID(org, k.coll, k.id)
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	cur, err := s.docs.Find(cctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
	if err != nil {
		return nil, translate(err)
	}
	var recs []docRec
	if err := cur.All(cctx, &recs); err != nil {
		return nil, translate(err)
	}
	for _, r := range recs {
		l, err := decodeDoc(r)
		if err != nil {
			return nil, err
		}
		out[docKey{r.Coll, r.DocID}] = l
	}
	return out, nil
}

func decodeDoc(r docRec) (*loaded, error) {
	d := &engine.Document{Org: r.Org, Collection: r.Coll, ID: r.DocID, Owner: r.Owner, Version: r.Version,
		Seq: r.Seq, Deleted: r.Deleted, UpdatedAt: time.UnixMilli(r.UpdatedAt).UTC(), UpdatedBy: r.UpdatedBy,
		OriginDevice: r.OriginDevice, OriginMutation: r.OriginMID}
	if r.Body != nil {
		d.Body = json.RawMessage(*r.Body)
	}
	if err := json.Unmarshal([]byte(r.Fields), &d.Fields); err != nil {
		return nil, fmt.Errorf("mongodb: decode fields of %s/%s: %w", r.Coll, r.DocID, err)
	}
	var positions map[string]feed.Pos
	if err := json.Unmarshal([]byte(r.Feed), &positions); err != nil {
		return nil, fmt.Errorf("mongodb: decode feed of %s/%s: %w", r.Coll, r.DocID, err)
	}
	for scope, f := range positions {
		if !f.Revoked {
			d.Scopes = append(d.Scopes, scope)
		}
	}
	slices.Sort(d.Scopes)
	return &loaded{Document: d, rec: r, feed: positions}, nil
}

func (st *state) load(l *loaded) {
	st.doc = l.Document
	st.exists, st.storedV, st.storedSeq = true, l.Version, l.Seq
	st.baseFeed = l.feed
	st.recent = l.rec.Recent
}

func (s *Store) loadStates(ctx context.Context, org string, sts []*state) error {
	keys := make([]docKey, len(sts))
	for i, st := range sts {
		keys[i] = st.key
	}
	cur, err := s.findDocs(ctx, org, keys)
	if err != nil {
		return err
	}
	for _, st := range sts {
		if l, ok := cur[st.key]; ok {
			st.load(l)
		}
	}
	return nil
}

// insertMany inserts docs unordered and returns the indexes that hit a
// duplicate key; any other failure is an error.
func (s *Store) insertMany(ctx context.Context, c *mongo.Collection, docs []any) ([]int, error) {
	if len(docs) == 0 {
		return nil, nil
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	_, err := c.InsertMany(cctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil {
		return nil, nil
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
		return nil, translate(err)
	}
	var dups []int
	for _, we := range bwe.WriteErrors {
		if !we.HasErrorCode(11000) {
			return nil, translate(err)
		}
		dups = append(dups, we.Index)
	}
	return dups, nil
}

func (s *Store) insertIgnoringDups(ctx context.Context, c *mongo.Collection, docs []any) error {
	_, err := s.insertMany(ctx, c, docs)
	return err
}

// onlyDupKeys reports whether a bulk write failed only on duplicate keys.
func onlyDupKeys(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if !we.HasErrorCode(11000) {
			return false
		}
	}
	return true
}
