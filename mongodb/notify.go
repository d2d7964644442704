package mongodb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fieldsync/fieldsync/push"
	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/webhook"
)

var _ push.Store = (*Store)(nil)

// Push notifications, in their own collections (no transactions needed):
//   - push_devices: _id = org+sep+user+sep+device id; a unique index on
//     token (one installation has one owner). reg_pending is the record's
//     registration (webhook.Registration): when it was created, in
//     milliseconds, set by the upsert that creates it ($setOnInsert) and
//     unset when the webhook tailer takes it. Index {org, reg_pending}.
//   - push_prefs: _id = org+sep+user; push_quiet: _id = org.
//   - push_tail: _id = org: the tailer's cursor and lease. The lease is a
//     filtered update; on FerretDB, where that is not a compare-and-swap,
//     two tailers may both tail an organisation for a while, which only
//     repeats idempotent inserts. The cursor only grows ($max).
//   - push_outbox: _id = the notification's deterministic id, so the
//     tailer's insert is idempotent (unordered InsertMany; duplicate keys
//     are the rows that exist). Index {status, due}.
//   - push_claims: _id = notification id+sep+claim generation. Claiming a
//     row is inserting its next generation: the only write that is atomic on
//     every server this store runs on, so two instances never both win one
//     generation. A generation whose claimer died before recording it on the
//     row is skipped once its lease has run out.
const (
	collPushDevices = "push_devices"
	collPushPrefs   = "push_prefs"
	collPushQuiet   = "push_quiet"
	collPushTail    = "push_tail"
	collPushOutbox  = "push_outbox"
	collPushClaims  = "push_claims"
)

func (s *Store) ensurePushIndexes(ctx context.Context) error {
	idx := []struct {
		coll   string
		keys   bson.D
		unique bool
	}{
		{collPushDevices, bson.D{{Key: "token", Value: 1}}, true},
		{collPushDevices, bson.D{{Key: "org", Value: 1}, {Key: "user", Value: 1}}, false},
		{collPushDevices, bson.D{{Key: "org", Value: 1}, {Key: "reg_pending", Value: 1}}, false},
		{collPushOutbox, bson.D{{Key: "status", Value: 1}, {Key: "due", Value: 1}}, false},
		{collPushClaims, bson.D{{Key: "lease_until", Value: 1}}, false},
	}
	for _, i := range idx {
		m := mongo.IndexModel{Keys: i.keys}
		if i.unique {
			m.Options = options.Index().SetUnique(true)
		}
		cctx, cancel := s.call(ctx)
		_, err := s.db.Collection(i.coll).Indexes().CreateOne(cctx, m)
		cancel()
		if err != nil {
			return translate(fmt.Errorf("mongodb: create index on %s: %w", i.coll, err))
		}
	}
	return nil
}

type deviceRec struct {
	ID         string `bson:"_id"`
	Org        string `bson:"org"`
	User       string `bson:"user"`
	Device     string `bson:"device"`
	Token      string `bson:"token"`
	Platform   string `bson:"platform"`
	AppVersion string `bson:"app_version"`
	Updated    int64  `bson:"updated"`
	RegPending int64  `bson:"reg_pending,omitempty"`
}

func deviceKey(org, user, id string) string { return org + sep + user + sep + id }

// PutDevice implements push.Store. The upsert that creates a record sets
// its registration (webhook.Registration) in the same single-document
// write; a refresh keeps the record's.
func (s *Store) PutDevice(ctx context.Context, d push.Device) error {
	key := deviceKey(d.Org, d.User, d.ID)
	c := s.db.Collection(collPushDevices)
	set := bson.D{{Key: "org", Value: d.Org}, {Key: "user", Value: d.User}, {Key: "device", Value: d.ID}, {Key: "token", Value: d.Token},
		{Key: "platform", Value: d.Platform}, {Key: "app_version", Value: d.AppVersion}, {Key: "updated", Value: millis(d.Updated)}}
	update := bson.D{{Key: "$set", Value: set}, {Key: "$setOnInsert", Value: bson.D{{Key: "reg_pending", Value: max(millis(d.Updated), 1)}}}}
	// Two attempts: a token another record held until the delete, taken
	// again by a concurrent registration, fails the unique index once.
	for attempt := 0; ; attempt++ {
		cctx, cancel := s.call(ctx)
		_, err := c.DeleteMany(cctx, bson.D{{Key: "token", Value: d.Token}, {Key: "_id", Value: bson.D{{Key: "$ne", Value: key}}}})
		if err == nil {
			_, err = c.UpdateOne(cctx, bson.D{{Key: "_id", Value: key}}, update, options.UpdateOne().SetUpsert(true))
		}
		cancel()
		if err == nil || !mongo.IsDuplicateKeyError(err) || attempt > 0 {
			return translate(err)
		}
	}
}

// PendingRegistrations implements webhook.Store.
func (s *Store) PendingRegistrations(ctx context.Context, org string, limit int) ([]webhook.Registration, error) {
	var recs []deviceRec
	if err := s.findRecords(ctx, collPushDevices, bson.D{{Key: "org", Value: org}, {Key: "reg_pending", Value: bson.D{{Key: "$gt", Value: int64(0)}}}},
		options.Find().SetSort(bson.D{{Key: "reg_pending", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(int64(limit)), &recs); err != nil {
		return nil, err
	}
	out := make([]webhook.Registration, 0, len(recs))
	for _, r := range recs {
		out = append(out, webhook.Registration{Org: r.Org, User: r.User, Device: r.Device, Platform: r.Platform, At: fromMillis(r.RegPending)})
	}
	return out, nil
}

// TakeRegistrations implements webhook.Store: one update of the records
// that still carry the registrations read.
func (s *Store) TakeRegistrations(ctx context.Context, rs []webhook.Registration) error {
	if len(rs) == 0 {
		return nil
	}
	or := make(bson.A, 0, len(rs))
	for _, r := range rs {
		or = append(or, bson.D{{Key: "_id", Value: deviceKey(r.Org, r.User, r.Device)}, {Key: "reg_pending", Value: max(millis(r.At), 1)}})
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	_, err := s.db.Collection(collPushDevices).UpdateMany(cctx, bson.D{{Key: "$or", Value: or}},
		bson.D{{Key: "$unset", Value: bson.D{{Key: "reg_pending", Value: ""}}}})
	return translate(err)
}

// Devices implements push.Store.
func (s *Store) Devices(ctx context.Context, org, user string) ([]push.Device, error) {
	var recs []deviceRec
	if err := s.findRecords(ctx, collPushDevices, bson.D{{Key: "org", Value: org}, {Key: "user", Value: user}},
		options.Find().SetSort(bson.D{{Key: "device", Value: 1}}), &recs); err != nil {
		return nil, err
	}
	out := make([]push.Device, 0, len(recs))
	for _, r := range recs {
		out = append(out, push.Device{Org: r.Org, User: r.User, ID: r.Device, Token: r.Token, Platform: r.Platform,
			AppVersion: r.AppVersion, Updated: fromMillis(r.Updated)})
	}
	return out, nil
}

// UserDevices implements push.Store: one find per organisation.
func (s *Store) UserDevices(ctx context.Context, users []push.UserRef) ([]push.Device, error) {
	byOrg := map[string]bson.A{}
	var orgs []string
	for _, u := range users {
		if _, ok := byOrg[u.Org]; !ok {
			orgs = append(orgs, u.Org)
		}
		byOrg[u.Org] = append(byOrg[u.Org], u.User)
	}
	var out []push.Device
	for _, org := range orgs {
		var recs []deviceRec
		if err := s.findRecords(ctx, collPushDevices, bson.D{{Key: "org", Value: org},
			{Key: "user", Value: bson.D{{Key: "$in", Value: byOrg[org]}}}}, nil, &recs); err != nil {
			return nil, err
		}
		for _, r := range recs {
			out = append(out, push.Device{Org: r.Org, User: r.User, ID: r.Device, Token: r.Token, Platform: r.Platform,
				AppVersion: r.AppVersion, Updated: fromMillis(r.Updated)})
		}
	}
	return out, nil
}

// DeleteDevice implements push.Store.
func (s *Store) DeleteDevice(ctx context.Context, org, user, id string) (bool, error) {
	return s.deleteOne(ctx, collPushDevices, bson.D{{Key: "_id", Value: deviceKey(org, user, id)}})
}

// DeleteToken implements push.Store.
func (s *Store) DeleteToken(ctx context.Context, org, user, id, token string) (bool, error) {
	return s.deleteOne(ctx, collPushDevices, bson.D{{Key: "_id", Value: deviceKey(org, user, id)}, {Key: "token", Value: token}})
}

func (s *Store) deleteOne(ctx context.Context, coll string, filter bson.D) (bool, error) {
	cctx, cancel := s.call(ctx)
	defer cancel()
	res, err := s.db.Collection(coll).DeleteOne(cctx, filter)
	if err != nil {
		return false, translate(err)
	}
	return res.DeletedCount > 0, nil
}

// PutPrefs implements push.Store.
func (s *Store) PutPrefs(ctx context.Context, org, user string, p push.Prefs) error {
	return s.upsertByID(ctx, collPushPrefs, func(ctx context.Context, c *mongo.Collection) error {
		_, err := c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: orgScopedID(org, user)}},
			bson.D{{Key: "muted", Value: storedList(p.Muted)}}, options.Replace().SetUpsert(true))
		return err
	})
}

// Prefs implements push.Store.
func (s *Store) Prefs(ctx context.Context, org, user string) (push.Prefs, error) {
	var rec struct {
		Muted []string `bson:"muted"`
	}
	err := s.findRecord(ctx, collPushPrefs, bson.D{{Key: "_id", Value: orgScopedID(org, user)}}, &rec, "prefs")
	if engine.ErrorKind(err) == engine.KindNotFound {
		return push.Prefs{}, nil
	}
	return push.Prefs{Muted: loadedList(rec.Muted)}, err
}

// PutQuietHours implements push.Store.
func (s *Store) PutQuietHours(ctx context.Context, org string, q push.QuietHours) error {
	return s.upsertByID(ctx, collPushQuiet, func(ctx context.Context, c *mongo.Collection) error {
		_, err := c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: org}},
			bson.D{{Key: "start", Value: q.Start}, {Key: "end", Value: q.End}}, options.Replace().SetUpsert(true))
		return err
	})
}

// QuietHours implements push.Store.
func (s *Store) QuietHours(ctx context.Context, org string) (push.QuietHours, error) {
	var rec struct {
		Start int `bson:"start"`
		End   int `bson:"end"`
	}
	err := s.findRecord(ctx, collPushQuiet, bson.D{{Key: "_id", Value: org}}, &rec, "quiet hours")
	if engine.ErrorKind(err) == engine.KindNotFound {
		return push.QuietHours{}, nil
	}
	return push.QuietHours{Start: rec.Start, End: rec.End}, err
}

// Orgs implements push.Store.
func (s *Store) Orgs(ctx context.Context) ([]string, error) {
	var recs []struct {
		ID string `bson:"_id"`
	}
	if err := s.findRecords(ctx, collOrgs, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}).
		SetSort(bson.D{{Key: "_id", Value: 1}}), &recs); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out, nil
}

type tailRec struct {
	Cursor int64  `bson:"cursor"`
	Owner  string `bson:"owner"`
}

// TailCursor implements push.Store.
func (s *Store) TailCursor(ctx context.Context, org string) (int64, error) {
	var rec tailRec
	err := s.findRecord(ctx, collPushTail, bson.D{{Key: "_id", Value: org}}, &rec, "tail")
	if engine.ErrorKind(err) == engine.KindNotFound {
		return 0, nil
	}
	return rec.Cursor, err
}

// TailCursors implements push.Store: one find over the tailer's records.
func (s *Store) TailCursors(ctx context.Context) (map[string]int64, error) {
	var recs []struct {
		Org    string `bson:"_id"`
		Cursor int64  `bson:"cursor"`
	}
	if err := s.findAll(ctx, s.db.Collection(collPushTail), bson.D{}, &recs); err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(recs))
	for _, r := range recs {
		out[r.Org] = r.Cursor
	}
	return out, nil
}

// AcquireTail implements push.Store.
func (s *Store) AcquireTail(ctx context.Context, org, owner string, now, until time.Time) (int64, bool, error) {
	c := s.db.Collection(collPushTail)
	cctx, cancel := s.call(ctx)
	defer cancel()
	var rec tailRec
	err := c.FindOneAndUpdate(cctx,
		bson.D{{Key: "_id", Value: org}, {Key: "$or", Value: bson.A{
			bson.D{{Key: "owner", Value: owner}}, bson.D{{Key: "lease_until", Value: bson.D{{Key: "$lte", Value: millis(now)}}}},
		}}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "owner", Value: owner}, {Key: "lease_until", Value: millis(until)}}},
			{Key: "$setOnInsert", Value: bson.D{{Key: "cursor", Value: int64(0)}}}},
		options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)).Decode(&rec)
	switch {
	case mongo.IsDuplicateKeyError(err):
		return 0, false, nil // held: the upsert tried to insert a second record
	case err != nil:
		return 0, false, translate(err)
	}
	return rec.Cursor, rec.Owner == owner, nil
}

// AdvanceTail implements push.Store.
func (s *Store) AdvanceTail(ctx context.Context, org, owner string, cursor int64, until time.Time) (bool, error) {
	cctx, cancel := s.call(ctx)
	defer cancel()
	res, err := s.db.Collection(collPushTail).UpdateOne(cctx, bson.D{{Key: "_id", Value: org}, {Key: "owner", Value: owner}},
		bson.D{{Key: "$max", Value: bson.D{{Key: "cursor", Value: cursor}}},
			{Key: "$set", Value: bson.D{{Key: "lease_until", Value: millis(until)}}}})
	if err != nil {
		return false, translate(err)
	}
	return res.MatchedCount > 0, nil
}

type outboxRec struct {
	ID         string   `bson:"_id"`
	Org        string   `bson:"org"`
	User       string   `bson:"user"`
	Trigger    string   `bson:"trigger"`
	Category   string   `bson:"category"`
	Collection string   `bson:"coll"`
	DocID      string   `bson:"doc_id"`
	Seq        int64    `bson:"seq"`
	Urgent     bool     `bson:"urgent"`
	Title      string   `bson:"title"`
	Body       string   `bson:"body"`
	Created    int64    `bson:"created"`
	Due        int64    `bson:"due"`
	Status     string   `bson:"status"`
	Attempts   int      `bson:"attempts"`
	LastError  string   `bson:"last_error"`
	Delivered  []string `bson:"delivered"`
	LeaseOwner string   `bson:"lease_owner"`
	LeaseUntil int64    `bson:"lease_until"`
	SentAt     int64    `bson:"sent_at"`
	Gen        int64    `bson:"gen"` // the last claim generation recorded on the row
}

func (r *outboxRec) notification() push.Notification {
	n := push.Notification{ID: r.ID, Org: r.Org, User: r.User, Trigger: r.Trigger, Category: r.Category,
		Collection: r.Collection, DocID: r.DocID, Seq: r.Seq, Urgent: r.Urgent, Title: r.Title, Body: r.Body,
		Created: fromMillis(r.Created), Due: fromMillis(r.Due), Status: r.Status, Attempts: r.Attempts,
		LastError: r.LastError, Delivered: loadedList(r.Delivered), LeaseOwner: r.LeaseOwner}
	if r.LeaseUntil != 0 {
		n.LeaseUntil = fromMillis(r.LeaseUntil)
	}
	if r.SentAt != 0 {
		n.SentAt = fromMillis(r.SentAt)
	}
	return n
}

func optMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return millis(t)
}

// Enqueue implements push.Store.
func (s *Store) Enqueue(ctx context.Context, ns []push.Notification) (int, error) {
	if len(ns) == 0 {
		return 0, nil
	}
	docs := make([]any, len(ns))
	for i, n := range ns {
		st := n.Status
		if st == "" {
			st = push.StatusPending
		}
		docs[i] = outboxRec{ID: n.ID, Org: n.Org, User: n.User, Trigger: n.Trigger, Category: n.Category,
			Collection: n.Collection, DocID: n.DocID, Seq: n.Seq, Urgent: n.Urgent, Title: n.Title, Body: n.Body,
			Created: millis(n.Created), Due: millis(n.Due), Status: st, Attempts: n.Attempts, LastError: n.LastError,
			Delivered: storedList(n.Delivered)}
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	_, err := s.db.Collection(collPushOutbox).InsertMany(cctx, docs, options.InsertMany().SetOrdered(false))
	dups, err := onlyDuplicates(err)
	if err != nil {
		return 0, err
	}
	return len(ns) - len(dups), nil
}

// onlyDuplicates returns the indexes of the writes of an unordered bulk
// insert that failed on a duplicate key, or the error when anything else
// failed.
func onlyDuplicates(err error) (map[int]bool, error) {
	if err == nil {
		return nil, nil
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
		return nil, translate(err)
	}
	dups := map[int]bool{}
	for _, we := range bwe.WriteErrors {
		if !mongo.IsDuplicateKeyError(we) {
			return nil, translate(err)
		}
		dups[we.Index] = true
	}
	return dups, nil
}

// Claim implements push.Store: one find for candidates, one unordered
// insert of their next claim generations, one bulk update of the rows
// won; claims that lost to a dead claimer are retried at the next
// generation.
func (s *Store) Claim(ctx context.Context, owner string, now, until time.Time, limit int) ([]push.Notification, error) {
	var cands []outboxRec
	if err := s.findRecords(ctx, collPushOutbox, bson.D{{Key: "status", Value: push.StatusPending},
		{Key: "due", Value: bson.D{{Key: "$lte", Value: millis(now)}}},
		{Key: "lease_until", Value: bson.D{{Key: "$lte", Value: millis(now)}}}},
		options.Find().SetSort(bson.D{{Key: "due", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(int64(limit)), &cands); err != nil {
		return nil, err
	}
	gen := make([]int64, len(cands))
	for i := range cands {
		gen[i] = cands[i].Gen + 1
	}
	won := map[int]bool{}
	pending := make([]int, len(cands))
	for i := range pending {
		pending[i] = i
	}
	claims := s.db.Collection(collPushClaims)
	for round := 0; round < 3 && len(pending) > 0; round++ {
		docs := make([]any, len(pending))
		for j, i := range pending {
			docs[j] = bson.D{{Key: "_id", Value: claimKey(cands[i].ID, gen[i])}, {Key: "owner", Value: owner},
				{Key: "lease_until", Value: millis(until)}}
		}
		cctx, cancel := s.call(ctx)
		_, err := claims.InsertMany(cctx, docs, options.InsertMany().SetOrdered(false))
		cancel()
		dups, err := onlyDuplicates(err)
		if err != nil {
			return nil, err
		}
		var lost []int
		var lostKeys bson.A
		for j, i := range pending {
			if dups[j] {
				lost = append(lost, i)
				lostKeys = append(lostKeys, claimKey(cands[i].ID, gen[i]))
			} else {
				won[i] = true
			}
		}
		if len(lost) == 0 {
			break
		}
		// A lost generation whose lease ran out belongs to a claimer that
		// died before recording it on the row: try the next one.
		var stale []struct {
			ID string `bson:"_id"`
		}
		if err := s.findRecords(ctx, collPushClaims, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: lostKeys}}},
			{Key: "lease_until", Value: bson.D{{Key: "$lte", Value: millis(now)}}}}, nil, &stale); err != nil {
			return nil, err
		}
		staleSet := map[string]bool{}
		for _, r := range stale {
			staleSet[r.ID] = true
		}
		pending = pending[:0]
		for _, i := range lost {
			if staleSet[claimKey(cands[i].ID, gen[i])] {
				gen[i]++
				pending = append(pending, i)
			}
		}
	}
	if len(won) == 0 {
		return nil, nil
	}
	var models []mongo.WriteModel
	var out []push.Notification
	for i := range cands {
		if !won[i] {
			continue
		}
		models = append(models, mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: cands[i].ID}}).
			SetUpdate(bson.D{{Key: "$max", Value: bson.D{{Key: "gen", Value: gen[i]}}},
				{Key: "$set", Value: bson.D{{Key: "lease_owner", Value: owner}, {Key: "lease_until", Value: millis(until)}}}}))
		cands[i].LeaseOwner, cands[i].LeaseUntil = owner, millis(until)
		out = append(out, cands[i].notification())
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	if _, err := s.db.Collection(collPushOutbox).BulkWrite(cctx, models); err != nil {
		return nil, translate(err)
	}
	return out, nil
}

func claimKey(id string, gen int64) string { return fmt.Sprintf("%s%s%d", id, sep, gen) }

// Complete implements push.Store: one bulk write of conditional updates.
func (s *Store) Complete(ctx context.Context, owner string, ns []push.Notification) (int, error) {
	if len(ns) == 0 {
		return 0, nil
	}
	models := make([]mongo.WriteModel, len(ns))
	for i, n := range ns {
		st := n.Status
		if st == "" {
			st = push.StatusPending
		}
		models[i] = mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: n.ID}, {Key: "lease_owner", Value: owner}}).
			SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: st}, {Key: "attempts", Value: n.Attempts},
				{Key: "last_error", Value: n.LastError}, {Key: "delivered", Value: storedList(n.Delivered)},
				{Key: "due", Value: millis(n.Due)}, {Key: "sent_at", Value: optMillis(n.SentAt)},
				{Key: "lease_owner", Value: ""}, {Key: "lease_until", Value: int64(0)}}}})
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	res, err := s.db.Collection(collPushOutbox).BulkWrite(cctx, models, options.BulkWrite().SetOrdered(false))
	if err != nil {
		return 0, translate(err)
	}
	return int(res.MatchedCount), nil
}

// Prune implements push.Store. Claim records whose lease ended before
// before go too: a row still pending then (attempts run out within hours)
// does not exist, so no claim generation is reused.
func (s *Store) Prune(ctx context.Context, before time.Time) (int, error) {
	cctx, cancel := s.call(ctx)
	defer cancel()
	res, err := s.db.Collection(collPushOutbox).DeleteMany(cctx, bson.D{
		{Key: "status", Value: bson.D{{Key: "$in", Value: bson.A{push.StatusSent, push.StatusDead}}}},
		{Key: "due", Value: bson.D{{Key: "$lt", Value: millis(before)}}}})
	if err != nil {
		return 0, translate(err)
	}
	cctx2, cancel2 := s.call(ctx)
	defer cancel2()
	if _, err := s.db.Collection(collPushClaims).DeleteMany(cctx2, bson.D{
		{Key: "lease_until", Value: bson.D{{Key: "$lt", Value: millis(before)}}}}); err != nil {
		return int(res.DeletedCount), translate(err)
	}
	return int(res.DeletedCount), nil
}

// OutboxDepth implements push.Store: two counts on the (status, due) index.
func (s *Store) OutboxDepth(ctx context.Context) (pending, dead int, err error) {
	var n [2]int64
	for i, st := range []string{push.StatusPending, push.StatusDead} {
		cctx, cancel := s.call(ctx)
		n[i], err = s.db.Collection(collPushOutbox).CountDocuments(cctx, bson.D{{Key: "status", Value: st}})
		cancel()
		if err != nil {
			return 0, 0, translate(err)
		}
	}
	return int(n[0]), int(n[1]), nil
}

// Notification implements push.Store.
func (s *Store) Notification(ctx context.Context, id string) (push.Notification, error) {
	var rec outboxRec
	if err := s.findRecord(ctx, collPushOutbox, bson.D{{Key: "_id", Value: id}}, &rec, "notification"); err != nil {
		return push.Notification{}, err
	}
	return rec.notification(), nil
}
