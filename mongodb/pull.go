package mongodb

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/sync/feed"
)

// maxWindows bounds the seqlog windows one pull walks while every change in
// them belongs to other scopes.
const maxWindows = 64

// Pull implements sync.Store. Writers commit out of order, so a reader first
// computes the organisation's committed prefix P (see prefix) and then reads
// the scopes' feed rows in (after, P] and merges them. A writer writes its
// feed rows before the commit marker of their seq, so every row that can
// ever appear at or below P is already there; a row whose seq's marker is
// void or names another document belongs to a writer that lost that seq
// and will move the row to a new one, so it is dropped here.
//
// Round trips per page: one seqlog find, one counter read when the walk
// reaches the end of the log or a gap, and one feed find for all the scopes
// together. Closing the expired gaps of a window adds one document lookup
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
	after := q.After
	window, windows := 2*q.Limit+64, maxWindows
	if s.opt.window > 0 {
		window, windows = s.opt.window, s.opt.windows
	}
	for range windows {
		p, marks, capped, err := s.prefix(ctx, q.Org, max(after, h.compacted), window)
		if err != nil {
			return engine.PullPage{}, err
		}
		if p <= after {
			return engine.PullPage{Through: after}, nil
		}
		lists, horizon, err := s.readFeed(ctx, q, after, p, marks, h.compacted)
		if err != nil {
			return engine.PullPage{}, err
		}
		if capped && horizon < 0 {
			horizon = p // more of the log lies past the window
		}
		page, more := feed.MergePage(lists, q.Limit, q.MaxBytes, horizon)
		if len(page) > 0 {
			through := page[len(page)-1].Seq
			if !more {
				through = max(through, p) // every row up to the prefix was read
			}
			return engine.PullPage{Changes: page, More: more, Through: through}, nil
		}
		if !capped {
			return engine.PullPage{Through: p}, nil
		}
		// Nothing for these scopes in this window of a long log: walk on.
		after = p
	}
	// Still nothing after maxWindows windows: the caller moves its
	// checkpoint this far and asks again.
	return engine.PullPage{More: true, Through: after}, nil
}

// prefix returns the highest seq P such that every seq in (after, P] is
// committed or void, the void ones among them, and whether P was cut by the
// window rather than by the end of the log or a gap.
//
// A gap g (a seq allocated but without a record yet) holds P at g-1 while
// its writer may still be running. Once the gap is older than the grace
// period, the reader closes it, and every other expired gap of the window
// with it. A gap's age comes from the data when it can: when the counter's
// last allocation is older than the grace period, every missing seq is
// (so after a crash and a restart the first pull past the grace period
// closes them all, whatever the process remembers); while allocations go
// on, from when this process first saw the gap. If a document carries g, its writer
// died after the commit point, and the reader finishes the commit (writes
// the feed rows from the document, inserts the marker); otherwise it
// inserts a void record. The unique _id makes the writer and the reader
// agree on the outcome: a writer whose marker then hits the duplicate key
// moves its change to a new seq.
func (s *Store) prefix(ctx context.Context, org string, after int64, window int) (int64, map[int64]seqRec, bool, error) {
	marks := map[int64]seqRec{}
	p := after
	for attempt := 0; attempt < 4; attempt++ {
		cctx, cancel := s.call(ctx)
		cur, err := s.seqlog.Find(cctx, bson.D{{Key: "org", Value: org}, {Key: "seq", Value: bson.D{{Key: "$gt", Value: p}}}},
			options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}).SetLimit(int64(window)))
		if err != nil {
			cancel()
			return 0, nil, false, translate(err)
		}
		var recs []seqRec
		err = cur.All(cctx, &recs)
		cancel()
		if err != nil {
			return 0, nil, false, translate(err)
		}
		gap := false
		for _, r := range recs {
			if r.Seq != p+1 {
				gap = true
				break
			}
			p++
			marks[p] = r
		}
		if !gap && len(recs) == window {
			return p, marks, true, nil
		}
		g := p + 1
		hi, lastAlloc, err := s.counter(ctx, org)
		if err != nil {
			return 0, nil, false, err
		}
		if hi < g {
			return p, marks, false, nil // no gap: the log ends here
		}
		// The missing seqs of the window, up to the highest allocated.
		have := map[int64]bool{}
		for _, r := range recs {
			have[r.Seq] = true
		}
		var gaps []int64
		for q := g; q <= hi && q <= p+int64(window); q++ {
			if !have[q] {
				gaps = append(gaps, q)
			}
		}
		// A gap has waited long enough when nothing was allocated in the
		// organisation for the grace period (every missing seq is older:
		// the data says so, whatever this process saw or when it started),
		// or when this process has seen it missing for that long.
		quiet := s.opt.Now().Sub(lastAlloc) >= s.opt.Grace
		var expired []int64
		for _, q := range gaps {
			if seen := s.gapExpired(org, q); quiet || seen {
				expired = append(expired, q)
			} else if q == g {
				break // the first gap holds the prefix: nothing past it helps now
			}
		}
		if len(expired) == 0 || expired[0] != g {
			return p, marks, false, nil
		}
		// Compaction deletes the markers at or below what it compacted:
		// never void a seq there, walk on above it instead.
		if h, err := s.history(ctx, org, true); err != nil {
			return 0, nil, false, err
		} else if g <= h.compacted {
			p = h.compacted
			continue
		}
		// Every expired gap of the window at once: one read of the
		// documents that may carry them, one insert of their records.
		if err := s.closeGaps(ctx, org, expired); err != nil {
			return 0, nil, false, err
		}
		// Walk on from g, which now has a record.
	}
	return p, marks, false, nil
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

// readFeed reads the feed rows of q.Scopes in (after, p] with one find,
// keeps only rows whose seq's commit marker names their document (a row at
// a void seq, or at a seq that two writers were handed, belongs to a writer
// that will move it to a new seq), and splits them into one list per scope
// for feed.MergePage. The find is bounded; when it is cut, the returned horizon
// is the last seq known to be complete.
func (s *Store) readFeed(ctx context.Context, q engine.PullQuery, after, p int64, marks map[int64]seqRec, compacted int64) ([][]engine.Change, int64, error) {
	// One seq holds at most one row per scope, so this bound always leaves
	// at least one whole seq before the cut.
	fetch := q.Limit + len(q.Scopes) + 1
	cctx, cancel := s.call(ctx)
	defer cancel()
	cur, err := s.feed.Find(cctx, bson.D{{Key: "org", Value: q.Org}, {Key: "scope", Value: bson.D{{Key: "$in", Value: q.Scopes}}},
		{Key: "seq", Value: bson.D{{Key: "$gt", Value: after}, {Key: "$lte", Value: p}}}},
		options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}).SetLimit(int64(fetch)))
	if err != nil {
		return nil, 0, translate(err)
	}
	var rows []feedRec
	if err := cur.All(cctx, &rows); err != nil {
		return nil, 0, translate(err)
	}
	horizon := int64(-1)
	if len(rows) == fetch {
		horizon = rows[len(rows)-1].Seq - 1
	}
	byScope := map[string]int{}
	lists := make([][]engine.Change, len(q.Scopes))
	for i, sc := range q.Scopes {
		byScope[sc] = i
	}
	for _, r := range rows {
		if horizon >= 0 && r.Seq > horizon {
			break
		}
		// At or below compacted every row is a committed change (compaction
		// removed the rest with the markers).
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
