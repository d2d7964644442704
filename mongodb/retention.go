package mongodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/sync/feed"
)

// History retention (the engine's retention.go explains the protocol). Per
// organisation, the history collection holds one record:
//
//	{_id: org, v, floor, floor_at, compacted, marks: [{s: seq, t: unix ms}, ...]}
//
// floor is announced; compacted says everything at or below it is gone:
// the tombstones and evictions, the feed rows of void seqs, and the commit
// markers. Readers need no marker at or below compacted (compaction removed
// the only rows a marker would have rejected), so the resolved prefix is
// never looked for below it (pull.go). marks record the organisation's resolved prefix
// (every seq at or below it committed or void) at past runs, from which the
// next floor is picked. Instances compacting at once agree through v: a run
// whose record moved meanwhile stops.

// floorTTL bounds how stale an instance's copy of a floor may be. It must
// stay well below engine.Retention.Wait, which the flags check.
const floorTTL = time.Minute

type floorSeen struct {
	floor, compacted int64
	at               time.Time
}

type histRec struct {
	Org       string     `bson:"_id"`
	V         int64      `bson:"v"`
	Floor     int64      `bson:"floor"`
	FloorAt   int64      `bson:"floor_at"`
	Compacted int64      `bson:"compacted"`
	Marks     []histMark `bson:"marks"`
}

// histMark is the resolved prefix at a past run (FerretDB stores no nested
// arrays, hence a document).
type histMark struct {
	Seq int64 `bson:"s"`
	At  int64 `bson:"t"`
}

// history reads org's record (zero when none); fresh skips the cache.
func (s *Store) history(ctx context.Context, org string, fresh bool) (floorSeen, error) {
	now := s.opt.Now()
	if !fresh {
		s.floorMu.Lock()
		f, ok := s.floorSeen[org]
		s.floorMu.Unlock()
		if ok && now.Sub(f.at) < floorTTL {
			return f, nil
		}
	}
	var h histRec
	cctx, cancel := s.call(ctx)
	err := s.hist.FindOne(cctx, bson.D{{Key: "_id", Value: org}}).Decode(&h)
	cancel()
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return floorSeen{}, translate(err)
	}
	f := floorSeen{floor: h.Floor, compacted: h.Compacted, at: now}
	s.floorMu.Lock()
	s.floorSeen[org] = f
	s.floorMu.Unlock()
	return f, nil
}

// Compact implements the retention run for every organisation of the
// database; see the engine's retention.go.
func (s *Store) Compact(ctx context.Context, now time.Time, r engine.Retention) (engine.Compaction, error) {
	var c engine.Compaction
	var counters []struct {
		ID string `bson:"_id"`
	}
	if err := s.findAll(ctx, s.counters, bson.D{}, &counters); err != nil {
		return c, err
	}
	cutoff := now.Add(-r.History).UnixMilli()
	for _, ct := range counters {
		org, ok := strings.CutPrefix(ct.ID, "seq"+sep)
		if !ok {
			continue
		}
		if err := s.compactOrg(ctx, org, now, cutoff, r.Wait, &c); err != nil {
			return c, err
		}
		c.Orgs++
	}
	cctx, cancel := s.call(ctx)
	res, err := s.muts.DeleteMany(cctx, bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: cutoff}}}})
	cancel()
	if err != nil {
		return c, translate(err)
	}
	c.Outcomes += res.DeletedCount
	return c, nil
}

func (s *Store) compactOrg(ctx context.Context, org string, now time.Time, cutoff int64, wait time.Duration, c *engine.Compaction) error {
	var h histRec
	cctx, cancel := s.call(ctx)
	err := s.hist.FindOne(cctx, bson.D{{Key: "_id", Value: org}}).Decode(&h)
	cancel()
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return translate(err)
	}
	h.Org = org
	v := h.V
	if h.Floor > h.Compacted && now.UnixMilli()-h.FloorAt >= wait.Milliseconds() {
		if err := s.compactBelow(ctx, org, h.Compacted, h.Floor, c); err != nil {
			return err
		}
		h.Compacted = h.Floor
		// Announced before the markers go, so that a pull from 0 starts
		// above them; then the markers.
		if ok, err := s.putHistory(ctx, &h, v); err != nil || !ok {
			return err
		}
		v = h.V
		cctx, cancel := s.call(ctx)
		res, err := s.seqlog.DeleteMany(cctx, bson.D{{Key: "org", Value: org}, {Key: "seq", Value: bson.D{{Key: "$lte", Value: h.Compacted}}}})
		cancel()
		if err != nil {
			return translate(err)
		}
		c.Markers += res.DeletedCount
	}
	// The resolved prefix now.
	p, err := s.resolve(ctx, org, max(h.Compacted, lastMark(h.Marks)))
	if err != nil {
		return err
	}
	var keep []histMark
	for i, m := range h.Marks {
		if m.At <= cutoff {
			if m.Seq > h.Floor {
				h.Floor, h.FloorAt = m.Seq, now.UnixMilli()
			}
			if i+1 < len(h.Marks) && h.Marks[i+1].At <= cutoff {
				continue
			}
		}
		keep = append(keep, m)
	}
	h.Marks = append(keep, histMark{Seq: p, At: now.UnixMilli()})
	if ok, err := s.putHistory(ctx, &h, v); err != nil || !ok {
		return err
	}
	// This instance knows at once; the others within floorTTL.
	s.floorMu.Lock()
	s.floorSeen[org] = floorSeen{floor: h.Floor, compacted: h.Compacted, at: s.opt.Now()}
	s.floorMu.Unlock()
	c.Floor = max(c.Floor, h.Floor)
	return nil
}

func lastMark(ms []histMark) int64 {
	if len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Seq
}

// putHistory writes h if its record is still at version v; false when
// another instance moved it first.
func (s *Store) putHistory(ctx context.Context, h *histRec, v int64) (bool, error) {
	h.V = v + 1
	cctx, cancel := s.call(ctx)
	defer cancel()
	var err error
	if v == 0 {
		_, err = s.hist.InsertOne(cctx, h)
		if mongo.IsDuplicateKeyError(err) {
			return false, nil
		}
		return err == nil, translate(err)
	}
	res, err := s.hist.ReplaceOne(cctx, bson.D{{Key: "_id", Value: h.Org}, {Key: "v", Value: v}}, h)
	if err != nil {
		return false, translate(err)
	}
	return res.MatchedCount == 1, nil
}

// compactBelow deletes, for seqs in (from, floor]: the feed rows of void
// seqs (left by writers that died before their commit), the tombstones with
// their feed rows, and the evictions.
func (s *Store) compactBelow(ctx context.Context, org string, from, floor int64, c *engine.Compaction) error {
	inRange := bson.D{{Key: "$gt", Value: from}, {Key: "$lte", Value: floor}}
	var voids []seqRec
	if err := s.findAll(ctx, s.seqlog, bson.D{{Key: "org", Value: org}, {Key: "seq", Value: inRange}, {Key: "void", Value: true}}, &voids); err != nil {
		return err
	}
	for start := 0; start < len(voids); start += 1000 {
		seqs := bson.A{}
		for _, v := range voids[start:min(start+1000, len(voids))] {
			seqs = append(seqs, v.Seq)
		}
		if err := s.deleteMany(ctx, s.feed, bson.D{{Key: "org", Value: org}, {Key: "seq", Value: bson.D{{Key: "$in", Value: seqs}}}}, &c.Feed); err != nil {
			return err
		}
	}
	for {
		var tombs []docRec
		cctx, cancel := s.call(ctx)
		cur, err := s.docs.Find(cctx, bson.D{{Key: "org", Value: org}, {Key: "seq", Value: bson.D{{Key: "$lte", Value: floor}}}, {Key: "deleted", Value: true}},
			options.Find().SetLimit(1000).SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "coll", Value: 1}, {Key: "id", Value: 1}, {Key: "feed", Value: 1}}))
		if err == nil {
			err = cur.All(cctx, &tombs)
		}
		cancel()
		if err != nil {
			return translate(err)
		}
		if len(tombs) == 0 {
			break
		}
		rows, docs := bson.A{}, bson.A{}
		for _, t := range tombs {
			var pos map[string]feed.Pos
			if err := json.Unmarshal([]byte(t.Feed), &pos); err != nil {
				return fmt.Errorf("mongodb: decode feed of %s/%s: %w", t.Coll, t.DocID, err)
			}
			for scope := range pos {
				rows = append(rows, feedID(org, scope, t.Coll, t.DocID))
			}
			docs = append(docs, t.ID)
		}
		if err := s.deleteMany(ctx, s.feed, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: rows}}}}, &c.Feed); err != nil {
			return err
		}
		if err := s.deleteMany(ctx, s.docs, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: docs}}}, {Key: "deleted", Value: true}}, &c.Docs); err != nil {
			return err
		}
	}
	return s.deleteMany(ctx, s.feed, bson.D{{Key: "org", Value: org}, {Key: "seq", Value: bson.D{{Key: "$lte", Value: floor}}}, {Key: "revoked", Value: true}}, &c.Feed)
}

func (s *Store) findAll(ctx context.Context, coll *mongo.Collection, filter bson.D, v any) error {
	cctx, cancel := s.call(ctx)
	defer cancel()
	cur, err := coll.Find(cctx, filter)
	if err != nil {
		return translate(err)
	}
	return translate(cur.All(cctx, v))
}

func (s *Store) deleteMany(ctx context.Context, coll *mongo.Collection, filter bson.D, n *int64) error {
	cctx, cancel := s.call(ctx)
	defer cancel()
	res, err := coll.DeleteMany(cctx, filter)
	if err != nil {
		return translate(err)
	}
	*n += res.DeletedCount
	return nil
}
