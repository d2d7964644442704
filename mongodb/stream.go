package mongodb

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// What the live stream (package stream) reads and writes: the change
// summary of an organisation's feed and the presence records that let
// every instance know which devices hold a stream somewhere.
//
// Collections and indexes:
//   - feed {org, seq}: "which scopes changed after seq N" is one range.
//   - presence: one record per (org, user, device, instance) with expires;
//     {org, user} serves Online, {expires} the clean-up, {instance} the
//     renewal.

// changedRows bounds the feed rows one Changed reads; past it the answer is
// All.
const changedRows = 8192

func (s *Store) ensureStreamIndexes(ctx context.Context) error {
	s.presence = s.db.Collection("presence")
	idx := []struct {
		c    *mongo.Collection
		keys bson.D
	}{
		{s.feed, bson.D{{Key: "org", Value: 1}, {Key: "seq", Value: 1}}},
		{s.presence, bson.D{{Key: "org", Value: 1}, {Key: "user", Value: 1}}},
		{s.presence, bson.D{{Key: "expires", Value: 1}}},
		{s.presence, bson.D{{Key: "instance", Value: 1}}},
	}
	for _, i := range idx {
		cctx, cancel := s.call(ctx)
		_, err := i.c.Indexes().CreateOne(cctx, mongo.IndexModel{Keys: i.keys})
		cancel()
		if err != nil {
			return translate(fmt.Errorf("mongodb: create index on %s: %w", i.c.Name(), err))
		}
	}
	return nil
}

// OnCommit registers fn to be called after every push through this store
// instance (committed or not: a spurious call only costs the stream hub one
// look). Changes written through other instances are not seen here; the
// hub polls for those. fn must not block.
func (s *Store) OnCommit(fn func(org string)) { s.onPush.Store(&fn) }

func (s *Store) afterPush(org string) {
	if p := s.onPush.Load(); p != nil && *p != nil {
		(*p)(org)
	}
}

// HeadHints implements stream.Hinter: the highest number allocated in each
// organisation, from one find on the counters. A hint past a stream's head
// means something may have committed; Changed says what.
func (s *Store) HeadHints(ctx context.Context, orgs []string) (map[string]int64, error) {
	ids := make(bson.A, len(orgs))
	for i, o := range orgs {
		ids[i] = "seq" + sep + o
	}
	var recs []struct {
		ID string `bson:"_id"`
		N  int64  `bson:"n"`
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	cur, err := s.counters.Find(cctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		options.Find().SetProjection(bson.D{{Key: "n", Value: 1}}))
	if err != nil {
		return nil, translate(err)
	}
	if err := cur.All(cctx, &recs); err != nil {
		return nil, translate(err)
	}
	out := make(map[string]int64, len(recs))
	for _, r := range recs {
		out[strings.TrimPrefix(r.ID, "seq"+sep)] = r.N
	}
	return out, nil
}

// Changed returns the organisation's resolved prefix (as Pull computes
// it, so nothing can still commit at or below Head) and the distinct scopes
// of feed rows in (after, Head].
//
// Round trips: one read of the counter when nothing was allocated after
// after (an idle poll); otherwise what Pull spends on the prefix (see
// resolve) and one find on feed. A row at a seq whose writer lost it is
// counted too: its keys are poked once more than needed, never less.
func (s *Store) Changed(ctx context.Context, org string, after int64, maxKeys int) (engine.ChangeSet, error) {
	cs := engine.ChangeSet{Head: after}
	hd, err := s.readHead(ctx, org)
	if err != nil || hd.hi <= after {
		return cs, err
	}
	// Not from after: a caller's position is no proof that everything
	// below it is resolved, and the prefix moved here is stored for all.
	p, err := s.resolveFrom(ctx, org, hd, 0)
	if err != nil || p <= after {
		return cs, err
	}
	cs.Head = p
	// A find rather than a distinct: it is bounded, and every backend
	// answers it the same way.
	cctx, cancel := s.call(ctx)
	defer cancel()
	cur, err := s.feed.Find(cctx, bson.D{{Key: "org", Value: org},
		{Key: "seq", Value: bson.D{{Key: "$gt", Value: after}, {Key: "$lte", Value: p}}}},
		options.Find().SetProjection(bson.D{{Key: "scope", Value: 1}, {Key: "_id", Value: 0}}).SetLimit(changedRows+1))
	if err != nil {
		return engine.ChangeSet{}, translate(err)
	}
	var rows []struct {
		Scope string `bson:"scope"`
	}
	if err := cur.All(cctx, &rows); err != nil {
		return engine.ChangeSet{}, translate(err)
	}
	var keys []string
	for _, r := range rows {
		keys = append(keys, r.Scope)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	if len(keys) > maxKeys || len(rows) > changedRows {
		cs.All = true
		return cs, nil
	}
	cs.Keys = keys
	return cs, nil
}

// Head returns the organisation's resolved prefix (see resolve): usually
// one read, since readers keep it stored.
func (s *Store) Head(ctx context.Context, org string) (int64, error) {
	return s.resolve(ctx, org, 0)
}

// presenceRec is one device's stream on one instance.
type presenceRec struct {
	ID       string    `bson:"_id"`
	Org      string    `bson:"org"`
	User     string    `bson:"user"`
	Device   string    `bson:"device"`
	Instance string    `bson:"instance"`
	Expires  time.Time `bson:"expires"`
}

func presenceID(p engine.Presence) string {
	return p.Org + sep + p.User + sep + p.Device + sep + p.Instance
}

// Touch records (or renews) presence records with one bulk write.
func (s *Store) Touch(ctx context.Context, ps []engine.Presence) error {
	if len(ps) == 0 {
		return nil
	}
	models := make([]mongo.WriteModel, 0, len(ps))
	for _, p := range ps {
		rec := presenceRec{ID: presenceID(p), Org: p.Org, User: p.User, Device: p.Device, Instance: p.Instance, Expires: p.Expires.UTC()}
		models = append(models, mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: rec.ID}}).
			SetReplacement(rec).SetUpsert(true))
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	_, err := s.presence.BulkWrite(cctx, models, options.BulkWrite().SetOrdered(false))
	return translate(err)
}

// Renew moves the expiry of every presence record of the instance to
// expires with one update and returns how many there are.
func (s *Store) Renew(ctx context.Context, instance string, expires time.Time) (int, error) {
	cctx, cancel := s.call(ctx)
	defer cancel()
	res, err := s.presence.UpdateMany(cctx, bson.D{{Key: "instance", Value: instance}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "expires", Value: expires.UTC()}}}})
	if err != nil {
		return 0, translate(err)
	}
	return int(res.MatchedCount), nil
}

// Leave removes presence records (Expires is ignored) and every record that
// expired before now.
func (s *Store) Leave(ctx context.Context, ps []engine.Presence, now time.Time) error {
	ids := make([]string, 0, len(ps))
	for _, p := range ps {
		ids = append(ids, presenceID(p))
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	_, err := s.presence.DeleteMany(cctx, bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}},
		bson.D{{Key: "expires", Value: bson.D{{Key: "$lt", Value: now.UTC()}}}},
	}}})
	return translate(err)
}

// Online returns the devices of the user that hold a live stream on any
// instance: a record counts until it expires.
func (s *Store) Online(ctx context.Context, org, user string) ([]string, error) {
	cctx, cancel := s.call(ctx)
	defer cancel()
	cur, err := s.presence.Find(cctx, bson.D{{Key: "org", Value: org}, {Key: "user", Value: user},
		{Key: "expires", Value: bson.D{{Key: "$gt", Value: s.opt.Now().UTC()}}}},
		options.Find().SetProjection(bson.D{{Key: "device", Value: 1}}))
	if err != nil {
		return nil, translate(err)
	}
	var recs []presenceRec
	if err := cur.All(cctx, &recs); err != nil {
		return nil, translate(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.Device)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
