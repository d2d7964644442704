package mongodb

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/sync/feed"
)

// markWindow is how many commit markers one read of the seqlog returns
// when the resolved prefix is moved past a stretch that counting showed to
// hold a gap (tests shrink it with Options.window).
const markWindow = 1024

// Pull implements sync.Store. Writers commit out of order, so a change is
// delivered only at or below the organisation's resolved prefix P: every
// seq at or below it is committed or void (see resolve). A writer writes
// its feed rows before the commit marker of their seq, so every row that can
// ever appear at or below P is already there. The caller's scopes are then
// read by position: the feed rows of its scopes in (after, P] in seq order,
// with the page's limit, and only that page's commit markers are checked.
// A row whose seq's marker is void or names another document belongs to a
// writer that lost that seq and will move the row to a new one, so it is
// dropped here.
//
// P is shared by every reader of the organisation (stored beside the
// counter), so a pull's cost follows the caller's own changes: a device
// that was away for a day reads its own rows in pages, not the day of the
// organisation's log.
//
// Round trips per page: one read of the counter with P; when P trails the
// counter, one count (or one window of markers) and one write of the new P;
// one feed find for all the scopes together; one find of the page's
// markers. Closing the expired gaps at the head adds one document lookup
// and two or three writes, for all of them together.
func (s *Store) Pull(ctx context.Context, q engine.PullQuery) (engine.PullPage, error) {
	if q.Limit <= 0 {
		return engine.PullPage{Through: q.After}, nil
	}
	// The history record (retention.go): a checkpoint below the floor
	// starts over; a pull from 0 needs no commit marker at or below what
	// was compacted, which is why it reads the record fresh.
	h, err := s.history(ctx, q.Org, q.After == 0)
	if err != nil {
		return engine.PullPage{}, err
	}
	if q.After > 0 && q.After < h.floor {
		return engine.PullPage{Compacted: true}, nil
	}
	p, err := s.resolve(ctx, q.Org, h.compacted)
	if err != nil {
		return engine.PullPage{}, err
	}
	if p <= q.After {
		return engine.PullPage{Through: q.After}, nil
	}
	lists, horizon, err := s.readFeed(ctx, q, p, h.compacted)
	if err != nil {
		return engine.PullPage{}, err
	}
	page, more := feed.MergePage(lists, q.Limit, q.MaxBytes, horizon)
	through := p // every row up to the prefix was read
	switch {
	case more && len(page) > 0:
		through = page[len(page)-1].Seq
	case more:
		through = horizon // every row the find returned was dropped
	}
	return engine.PullPage{Changes: page, More: more, Through: through}, nil
}

// head is what the counters collection says of an organisation.
type head struct {
	hi        int64     // the highest seq allocated
	lastAlloc time.Time // when it was allocated
	resolved  int64     // the resolved prefix last stored by a reader
}

// prefixID is the _id, in counters, of org's resolved prefix: beside the
// counter (one find reads both) but a document of its own, because a
// counter is written by $inc, which FerretDB applies as a read and a write
// that a concurrent update to the same document could undo.
func prefixID(org string) string { return "prefix" + sep + org }

// readHead reads org's counter and stored resolved prefix with one find.
func (s *Store) readHead(ctx context.Context, org string) (head, error) {
	var recs []struct {
		ID string `bson:"_id"`
		N  int64  `bson:"n"`
		At int64  `bson:"at"`
		P  int64  `bson:"p"`
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	cur, err := s.counters.Find(cctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{"seq" + sep + org, prefixID(org)}}}}})
	if err != nil {
		return head{}, translate(err)
	}
	if err := cur.All(cctx, &recs); err != nil {
		return head{}, translate(err)
	}
	var h head
	for _, r := range recs {
		if r.ID == prefixID(org) {
			h.resolved = r.P
			continue
		}
		h.hi, h.lastAlloc = r.N, time.UnixMilli(r.At)
		if r.At == 0 {
			h.lastAlloc = s.opt.Now() // unknown: as if just allocated
		}
	}
	return h, nil
}

// resolve returns org's resolved prefix P, the highest seq such that every
// seq in (0, P] is committed or void (or compacted), moved as far as the
// data allows now and stored for every other reader when it moved. known
// is a prefix the store itself established (what was compacted, a past
// resolved prefix), never a caller's position: it is trusted without a
// look at the markers below it.
func (s *Store) resolve(ctx context.Context, org string, known int64) (int64, error) {
	hd, err := s.readHead(ctx, org)
	if err != nil {
		return 0, err
	}
	return s.resolveFrom(ctx, org, hd, known)
}

// resolveFrom is resolve with org's head already read.
func (s *Store) resolveFrom(ctx context.Context, org string, hd head, known int64) (int64, error) {
	p, err := s.advance(ctx, org, max(hd.resolved, known), hd)
	if err != nil || p <= hd.resolved {
		return p, err
	}
	// w:1 is enough: P only states what majority-read markers say, so a
	// stored P that a failover rolls back is merely computed again.
	cctx, cancel := s.call(ctx)
	defer cancel()
	for attempt := 0; ; attempt++ {
		_, err = s.counters.UpdateOne(cctx, bson.D{{Key: "_id", Value: prefixID(org)}},
			bson.D{{Key: "$max", Value: bson.D{{Key: "p", Value: p}}}}, options.UpdateOne().SetUpsert(true))
		// Two first stores race to insert; the loser's retry updates.
		if err == nil || !mongo.IsDuplicateKeyError(err) || attempt > 0 {
			return p, translate(err)
		}
	}
}

// advance moves a resolved prefix p of org towards hd.hi and returns where
// it stops: at hd.hi, or before the first gap (a seq allocated but without
// a record yet) whose writer may still be running.
//
// Counting finds the first gap without reading the log: when the markers in
// (p, hi] number hi-p there is none; otherwise halving the range with counts
// narrows it to one window of markers, which is read. The cost is a count
// or two when the log is complete, and a logarithm of the distance
// otherwise, never a walk of the log in windows.
//
// A gap g holds P at g-1 while its writer may still be running. Once the gap
// is older than the grace period, the reader closes it, and every other
// expired gap of the window with it. A gap's age comes from the data when
// it can: when the counter's last allocation is older than the grace
// period, every missing seq is (so after a crash and a restart the first
// pull past the grace period closes them all, whatever the process
// remembers); while allocations go on, from when this process first saw the
// gap. If a document carries g, its writer died after the commit point, and
// the reader finishes the commit (writes the feed rows from the document,
// inserts the marker); otherwise it inserts a void record. The unique _id
// makes the writer and the reader agree on the outcome: a writer whose
// marker then hits the duplicate key moves its change to a new seq.
func (s *Store) advance(ctx context.Context, org string, p int64, hd head) (int64, error) {
	window := int64(markWindow)
	if s.opt.window > 0 {
		window = int64(s.opt.window)
	}
	// Each round either reaches hi, stops at a gap that has not expired, or
	// closes the expired gaps of a window; a crashed writer's block longer
	// than a few windows is closed over the next pulls.
	for round := 0; round < 8 && p < hd.hi; round++ {
		if hd.hi-p > window {
			var err error
			if p, err = s.completeUpTo(ctx, org, p, hd.hi, window); err != nil || p >= hd.hi {
				return p, err
			}
		}
		top := min(hd.hi, p+window)
		var recs []struct {
			Seq int64 `bson:"seq"`
		}
		cctx, cancel := s.call(ctx)
		cur, err := s.seqlog.Find(cctx, bson.D{{Key: "org", Value: org}, {Key: "seq", Value: bson.D{{Key: "$gt", Value: p}, {Key: "$lte", Value: top}}}},
			options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}).SetProjection(bson.D{{Key: "seq", Value: 1}, {Key: "_id", Value: 0}}).
				SetBatchSize(int32(window)+1))
		if err == nil {
			err = cur.All(cctx, &recs)
		}
		cancel()
		if err != nil {
			return 0, translate(err)
		}
		have := make(map[int64]bool, len(recs))
		for _, r := range recs {
			have[r.Seq] = true
		}
		for p < top && have[p+1] {
			p++
		}
		if p == top {
			continue // the window was complete: count on from it
		}
		g := p + 1
		var gaps []int64
		for q := g; q <= top; q++ {
			if !have[q] {
				gaps = append(gaps, q)
			}
		}
		// A gap has waited long enough when nothing was allocated in the
		// organisation for the grace period (every missing seq is older:
		// the data says so, whatever this process saw or when it started),
		// or when this process has seen it missing for that long.
		quiet := s.opt.Now().Sub(hd.lastAlloc) >= s.opt.Grace
		var expired []int64
		for _, q := range gaps {
			if seen := s.gapExpired(org, q); quiet || seen {
				expired = append(expired, q)
			} else if q == g {
				break // the first gap holds the prefix: nothing past it helps now
			}
		}
		if len(expired) == 0 || expired[0] != g {
			return p, nil
		}
		// Compaction deletes the markers at or below what it compacted:
		// never void a seq there, go on above it instead.
		if h, err := s.history(ctx, org, true); err != nil {
			return 0, err
		} else if g <= h.compacted {
			p = h.compacted
			continue
		}
		// Every expired gap of the window at once: one read of the
		// documents that may carry them, one insert of their records.
		if err := s.closeGaps(ctx, org, expired); err != nil {
			return 0, err
		}
		// Go on from g, which now has a record.
	}
	return p, nil
}

// completeUpTo returns the highest q in [p, hi] such that every seq in
// (p, q] has a record and, unless q is hi, a gap lies within window past
// q: one count when (p, hi] is complete, then one per halving of the range.
func (s *Store) completeUpTo(ctx context.Context, org string, p, hi, window int64) (int64, error) {
	complete := func(lo, up int64) (bool, error) {
		cctx, cancel := s.call(ctx)
		defer cancel()
		n, err := s.seqlog.CountDocuments(cctx, bson.D{{Key: "org", Value: org}, {Key: "seq", Value: bson.D{{Key: "$gt", Value: lo}, {Key: "$lte", Value: up}}}})
		return n == up-lo, translate(err)
	}
	ok, err := complete(p, hi)
	if err != nil || ok {
		return hi, err
	}
	lo, up := p, hi // (p, lo] complete; (lo, up] holds a gap
	for up-lo > window {
		mid := lo + (up-lo)/2
		ok, err := complete(lo, mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			up = mid
		}
	}
	return lo, nil
}

// gapExpired records when org's seq g was first seen missing and reports
// whether that was longer ago than the grace period.
func (s *Store) gapExpired(org string, g int64) bool {
	now := s.opt.Now()
	s.gapMu.Lock()
	defer s.gapMu.Unlock()
	k := gapKey{org, g}
	first, ok := s.gaps[k]
	if !ok {
		if len(s.gaps) > 1024 {
			for k, t := range s.gaps {
				if now.Sub(t) > 10*s.opt.Grace {
					delete(s.gaps, k)
				}
			}
		}
		s.gaps[k] = now
		return false
	}
	if now.Sub(first) < s.opt.Grace {
		return false
	}
	delete(s.gaps, k)
	return true
}

// closeGaps commits or voids each of org's seqs gs, whichever is right: a
// document that carries the seq means its writer died after the commit
// point, and the reader finishes the commit (the feed rows from the
// document, the marker); otherwise the seq gets a void record. The unique
// _id makes writers and readers agree: a record already there (the writer
// or another reader got there first) stays.
func (s *Store) closeGaps(ctx context.Context, org string, gs []int64) error {
	var recs []docRec
	cctx, cancel := s.call(ctx)
	cur, err := s.docs.Find(cctx, bson.D{{Key: "org", Value: org}, {Key: "seq", Value: bson.D{{Key: "$in", Value: gs}}}})
	if err == nil {
		err = cur.All(cctx, &recs)
	}
	cancel()
	if err != nil {
		return translate(err)
	}
	markers := make(map[int64]seqRec, len(gs))
	for _, g := range gs {
		markers[g] = seqRec{ID: seqID(org, g), Org: org, Seq: g, Void: true}
	}
	var rows []feedRec
	for _, rec := range recs {
		l, err := decodeDoc(rec)
		if err != nil {
			return err
		}
		k := docKey{rec.Coll, rec.DocID}
		for scope, f := range l.feed {
			if f.Seq == rec.Seq {
				rows = append(rows, feedRow(org, scope, k, f, rec.Version, rec.Deleted, rec.Body))
			}
		}
		markers[rec.Seq] = seqRec{ID: seqID(org, rec.Seq), Org: org, Seq: rec.Seq, Coll: rec.Coll, DocID: rec.DocID}
	}
	if err := s.upsertFeed(ctx, rows); err != nil {
		return err
	}
	docs := make([]any, 0, len(markers))
	for _, g := range gs {
		docs = append(docs, markers[g])
	}
	// Duplicate keys mean the writer (or another reader) got there first.
	return s.insertIgnoringDups(ctx, s.seqlog, docs)
}

// readFeed reads the feed rows of q.Scopes in (q.After, p] with one find,
// keeps only rows whose seq's commit marker names their document (a row at
// a void seq, or at a seq that two writers were handed, belongs to a writer
// that will move it to a new seq), read with one more find for the seqs of
// these rows alone, and splits them into one list per scope for
// feed.MergePage. The find is bounded; when it is cut, the returned horizon
// is the last seq known to be complete.
func (s *Store) readFeed(ctx context.Context, q engine.PullQuery, p, compacted int64) ([][]engine.Change, int64, error) {
	// One seq holds at most one row per scope, so this bound always leaves
	// at least one whole seq before the cut.
	fetch := q.Limit + len(q.Scopes) + 1
	// Batch sizes here are one more than can come back, so that the first
	// batch ends the cursor and no getMore round trip follows.
	var rows []feedRec
	cctx, cancel := s.call(ctx)
	cur, err := s.feed.Find(cctx, bson.D{{Key: "org", Value: q.Org}, {Key: "scope", Value: bson.D{{Key: "$in", Value: q.Scopes}}},
		{Key: "seq", Value: bson.D{{Key: "$gt", Value: q.After}, {Key: "$lte", Value: p}}}},
		options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}).SetLimit(int64(fetch)).SetBatchSize(int32(fetch)+1))
	if err == nil {
		err = cur.All(cctx, &rows)
	}
	cancel()
	if err != nil {
		return nil, 0, translate(err)
	}
	horizon := int64(-1)
	if len(rows) == fetch {
		horizon = rows[len(rows)-1].Seq - 1
		for len(rows) > 0 && rows[len(rows)-1].Seq > horizon {
			rows = rows[:len(rows)-1]
		}
	}
	// At or below compacted every row is a committed change (compaction
	// removed the rest with the markers): only the seqs above need theirs.
	var ids bson.A
	for i, r := range rows {
		if r.Seq > compacted && (i == 0 || rows[i-1].Seq != r.Seq) {
			ids = append(ids, seqID(q.Org, r.Seq))
		}
	}
	marks := map[int64]seqRec{}
	if len(ids) > 0 {
		var recs []seqRec
		cctx, cancel := s.call(ctx)
		// org with the _ids: routed to the shards of org's range of the
		// seqlog's shard key (docs/scaling.md), served by the _id index.
		cur, err := s.seqlog.Find(cctx, bson.D{{Key: "org", Value: q.Org}, {Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
			options.Find().SetBatchSize(int32(len(ids))+1))
		if err == nil {
			err = cur.All(cctx, &recs)
		}
		cancel()
		if err != nil {
			return nil, 0, translate(err)
		}
		for _, m := range recs {
			marks[m.Seq] = m
		}
	}
	byScope := map[string]int{}
	lists := make([][]engine.Change, len(q.Scopes))
	for i, sc := range q.Scopes {
		byScope[sc] = i
	}
	for _, r := range rows {
		if m, ok := marks[r.Seq]; r.Seq > compacted && (!ok || m.Void || m.Coll != r.Coll || m.DocID != r.DocID) {
			continue
		}
		c := engine.Change{Seq: r.Seq, Collection: r.Coll, ID: r.DocID, Version: r.Version, Deleted: r.Deleted, Evicted: r.Revoked}
		if !c.Evicted && !c.Deleted && r.Body != nil {
			c.Body = []byte(*r.Body)
		}
		i := byScope[r.Scope]
		lists[i] = append(lists[i], c)
	}
	return lists, horizon, nil
}

// ScopeRefs implements engine.ScopeLister: every document with a live feed
// row under scope, committed or not (a restamp reads each one's committed
// state and writes only those whose keys are wrong), in one find that is
// not held at the first gap of the sequence the way a pull is.
func (s *Store) ScopeRefs(ctx context.Context, org, scope string) ([]engine.DocRef, error) {
	var rows []struct {
		Coll  string `bson:"coll"`
		DocID string `bson:"id"`
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	cur, err := s.feed.Find(cctx, bson.D{{Key: "org", Value: org}, {Key: "scope", Value: scope}, {Key: "revoked", Value: false}, {Key: "deleted", Value: false}},
		options.Find().SetProjection(bson.D{{Key: "coll", Value: 1}, {Key: "id", Value: 1}}))
	if err != nil {
		return nil, translate(err)
	}
	if err := cur.All(cctx, &rows); err != nil {
		return nil, translate(err)
	}
	out := make([]engine.DocRef, len(rows))
	for i, r := range rows {
		out[i] = engine.DocRef{Collection: r.Coll, ID: r.DocID}
	}
	return out, nil
}
