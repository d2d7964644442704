package mongodb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/webhook"
)

var _ webhook.Store = (*Store)(nil)

// Webhooks, in their own collections (package webhook):
//   - webhook_subs: one record per version of a subscription, _id =
//     org+sep+id+sep+version, so that a write from version v is the insert
//     of v+1: one of two racing writes wins on MongoDB and FerretDB alike
//     (see serviceaccounts.go). Superseded versions are deleted after.
//   - webhook_tail: _id = org: the tailer's cursor, only ever raised ($max).
//   - webhook_deliveries: _id = the deterministic delivery id, so the
//     tailer's insert is idempotent. Index {status, due}, {org, sub, created}.
//   - webhook_claims: _id = delivery id+sep+claim generation; claiming is
//     inserting the next generation, as push_claims (notify.go).
const (
	collWebhookSubs   = "webhook_subs"
	collWebhookTail   = "webhook_tail"
	collWebhookDeliv  = "webhook_deliveries"
	collWebhookClaims = "webhook_claims"
)

func (s *Store) createWebhookIndexes(ctx context.Context) error {
	for _, i := range []struct {
		coll string
		keys bson.D
	}{
		{collWebhookSubs, bson.D{{Key: "org", Value: 1}, {Key: "sid", Value: 1}, {Key: "version", Value: -1}}},
		{collWebhookDeliv, bson.D{{Key: "status", Value: 1}, {Key: "due", Value: 1}}},
		{collWebhookDeliv, bson.D{{Key: "org", Value: 1}, {Key: "sub", Value: 1}, {Key: "created", Value: -1}}},
	} {
		cctx, cancel := s.call(ctx)
		_, err := s.db.Collection(i.coll).Indexes().CreateOne(cctx, mongo.IndexModel{Keys: i.keys})
		cancel()
		if err != nil {
			return translate(fmt.Errorf("mongodb: create index on %s: %w", i.coll, err))
		}
	}
	return nil
}

type subRec struct {
	ID             string   `bson:"_id"`
	Org            string   `bson:"org"`
	SID            string   `bson:"sid"`
	Version        int64    `bson:"version"`
	URL            string   `bson:"url"`
	Events         []string `bson:"events"`
	Roles          []string `bson:"roles"`
	Activities     []string `bson:"activities"`
	Secret         string   `bson:"secret"`
	PrevSecret     string   `bson:"prev_secret"`
	PrevUntil      int64    `bson:"prev_until"`
	Disabled       bool     `bson:"disabled"`
	DisabledReason string   `bson:"disabled_reason"`
	Failures       int      `bson:"failures"`
	FailingSince   int64    `bson:"failing_since"`
	Created        int64    `bson:"created"`
	Updated        int64    `bson:"updated"`
}

func (r *subRec) sub() *webhook.Subscription {
	s := &webhook.Subscription{Org: r.Org, ID: r.SID, URL: r.URL, Events: loadedList(r.Events), Roles: loadedList(r.Roles),
		Activities: loadedList(r.Activities), Secret: r.Secret, PrevSecret: r.PrevSecret, Disabled: r.Disabled,
		DisabledReason: r.DisabledReason, Failures: r.Failures, Version: r.Version, Created: fromMillis(r.Created), Updated: fromMillis(r.Updated)}
	if r.PrevUntil != 0 {
		s.PrevUntil = fromMillis(r.PrevUntil)
	}
	if r.FailingSince != 0 {
		s.FailingSince = fromMillis(r.FailingSince)
	}
	return s
}

// PutSubscription implements webhook.Store.
func (s *Store) PutSubscription(ctx context.Context, sub *webhook.Subscription) error {
	if sub.Version > 0 {
		cur, err := s.Subscription(ctx, sub.Org, sub.ID)
		if err != nil {
			return err
		}
		if cur.Version != sub.Version {
			return errSubVersion(sub)
		}
	}
	next := sub.Version + 1
	rec := subRec{ID: fmt.Sprintf("%s%s%s%s%020d", sub.Org, sep, sub.ID, sep, next), Org: sub.Org, SID: sub.ID, Version: next,
		URL: sub.URL, Events: storedList(sub.Events), Roles: storedList(sub.Roles), Activities: storedList(sub.Activities),
		Secret: sub.Secret, PrevSecret: sub.PrevSecret, PrevUntil: optMillis(sub.PrevUntil), Disabled: sub.Disabled,
		DisabledReason: sub.DisabledReason, Failures: sub.Failures, FailingSince: optMillis(sub.FailingSince),
		Created: millis(sub.Created), Updated: millis(sub.Updated)}
	cctx, cancel := s.call(ctx)
	_, err := s.db.Collection(collWebhookSubs).InsertOne(cctx, rec)
	cancel()
	if mongo.IsDuplicateKeyError(err) {
		return errSubVersion(sub)
	}
	if err != nil {
		return translate(err)
	}
	sub.Version = next
	cctx, cancel = s.call(ctx)
	s.db.Collection(collWebhookSubs).DeleteMany(cctx, bson.D{{Key: "org", Value: sub.Org}, {Key: "sid", Value: sub.ID},
		{Key: "version", Value: bson.D{{Key: "$lt", Value: next}}}})
	cancel()
	return nil
}

func errSubVersion(sub *webhook.Subscription) error {
	return engine.Errorf(engine.KindConflict, identity.CodeVersionMismatch, "/version",
		"the subscription changed since version %d was read", sub.Version)
}

// Subscription implements webhook.Store.
func (s *Store) Subscription(ctx context.Context, org, id string) (*webhook.Subscription, error) {
	var rec subRec
	cctx, cancel := s.call(ctx)
	defer cancel()
	err := s.db.Collection(collWebhookSubs).FindOne(cctx, bson.D{{Key: "org", Value: org}, {Key: "sid", Value: id}},
		options.FindOne().SetSort(bson.D{{Key: "version", Value: -1}})).Decode(&rec)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, errNoRecord("subscription")
	}
	if err != nil {
		return nil, translate(err)
	}
	return rec.sub(), nil
}

// Subscriptions implements webhook.Store.
func (s *Store) Subscriptions(ctx context.Context, org string) ([]*webhook.Subscription, error) {
	filter := bson.D{}
	if org != "" {
		filter = bson.D{{Key: "org", Value: org}}
	}
	var recs []subRec
	opt := options.Find().SetSort(bson.D{{Key: "org", Value: 1}, {Key: "sid", Value: 1}, {Key: "version", Value: -1}})
	if err := s.findRecords(ctx, collWebhookSubs, filter, opt, &recs); err != nil {
		return nil, err
	}
	var out []*webhook.Subscription
	for i := range recs {
		if i > 0 && recs[i].Org == recs[i-1].Org && recs[i].SID == recs[i-1].SID {
			continue // an older version not deleted yet
		}
		out = append(out, recs[i].sub())
	}
	return out, nil
}

// WebhookCursor implements webhook.Store.
func (s *Store) WebhookCursor(ctx context.Context, org string) (int64, error) {
	var rec struct {
		Cursor int64 `bson:"cursor"`
	}
	err := s.findRecord(ctx, collWebhookTail, bson.D{{Key: "_id", Value: org}}, &rec, "cursor")
	if engine.ErrorKind(err) == engine.KindNotFound {
		return 0, nil
	}
	return rec.Cursor, err
}

// AdvanceWebhookCursor implements webhook.Store.
func (s *Store) AdvanceWebhookCursor(ctx context.Context, org string, cursor int64) error {
	cctx, cancel := s.call(ctx)
	defer cancel()
	_, err := s.db.Collection(collWebhookTail).UpdateOne(cctx, bson.D{{Key: "_id", Value: org}},
		bson.D{{Key: "$max", Value: bson.D{{Key: "cursor", Value: cursor}}}}, options.UpdateOne().SetUpsert(true))
	if mongo.IsDuplicateKeyError(err) {
		return s.AdvanceWebhookCursor(ctx, org, cursor) // two upserts raced: the record exists now
	}
	return translate(err)
}

type deliveryRec struct {
	ID         string `bson:"_id"`
	Org        string `bson:"org"`
	Sub        string `bson:"sub"`
	Event      string `bson:"event"`
	Seq        int64  `bson:"seq"`
	Body       []byte `bson:"body"`
	Created    int64  `bson:"created"`
	Due        int64  `bson:"due"`
	Status     string `bson:"status"`
	Attempts   int    `bson:"attempts"`
	LastError  string `bson:"last_error"`
	LeaseOwner string `bson:"lease_owner"`
	LeaseUntil int64  `bson:"lease_until"`
	SentAt     int64  `bson:"sent_at"`
	Gen        int64  `bson:"gen"` // the last claim generation recorded on the record
}

func (r *deliveryRec) delivery() webhook.Delivery {
	d := webhook.Delivery{ID: r.ID, Org: r.Org, Sub: r.Sub, Event: r.Event, Seq: r.Seq, Body: r.Body, Created: fromMillis(r.Created),
		Due: fromMillis(r.Due), Status: r.Status, Attempts: r.Attempts, LastError: r.LastError, LeaseOwner: r.LeaseOwner}
	if r.LeaseUntil != 0 {
		d.LeaseUntil = fromMillis(r.LeaseUntil)
	}
	if r.SentAt != 0 {
		d.SentAt = fromMillis(r.SentAt)
	}
	return d
}

// EnqueueDeliveries implements webhook.Store: one unordered insert; the
// duplicate keys are the deliveries that exist.
func (s *Store) EnqueueDeliveries(ctx context.Context, ds []webhook.Delivery) (int, error) {
	if len(ds) == 0 {
		return 0, nil
	}
	docs := make([]any, len(ds))
	for i, d := range ds {
		st := d.Status
		if st == "" {
			st = webhook.StatusPending
		}
		docs[i] = deliveryRec{ID: d.ID, Org: d.Org, Sub: d.Sub, Event: d.Event, Seq: d.Seq, Body: d.Body, Created: millis(d.Created),
			Due: millis(d.Due), Status: st, Attempts: d.Attempts, LastError: d.LastError}
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	_, err := s.db.Collection(collWebhookDeliv).InsertMany(cctx, docs, options.InsertMany().SetOrdered(false))
	dups, err := onlyDuplicates(err)
	if err != nil {
		return 0, err
	}
	return len(ds) - len(dups), nil
}

// ClaimDeliveries implements webhook.Store: a delivery is won by inserting
// its next claim generation (atomic on MongoDB and FerretDB); a generation
// whose claimer died before recording it is skipped once its lease ran out.
func (s *Store) ClaimDeliveries(ctx context.Context, owner string, now, until time.Time, limit int) ([]webhook.Delivery, error) {
	var cands []deliveryRec
	if err := s.findRecords(ctx, collWebhookDeliv, bson.D{{Key: "status", Value: webhook.StatusPending},
		{Key: "due", Value: bson.D{{Key: "$lte", Value: millis(now)}}},
		{Key: "lease_until", Value: bson.D{{Key: "$lte", Value: millis(now)}}}},
		options.Find().SetSort(bson.D{{Key: "due", Value: 1}, {Key: "_id", Value: 1}}).SetLimit(int64(limit)), &cands); err != nil {
		return nil, err
	}
	claims := s.db.Collection(collWebhookClaims)
	var out []webhook.Delivery
	for _, c := range cands {
		gen, won := c.Gen+1, false
		for range 3 {
			key := claimKey(c.ID, gen)
			cctx, cancel := s.call(ctx)
			_, err := claims.InsertOne(cctx, bson.D{{Key: "_id", Value: key}, {Key: "owner", Value: owner}, {Key: "lease_until", Value: millis(until)}})
			cancel()
			if err == nil {
				won = true
				break
			}
			if !mongo.IsDuplicateKeyError(err) {
				return nil, translate(err)
			}
			var held struct {
				LeaseUntil int64 `bson:"lease_until"`
			}
			if err := s.findRecord(ctx, collWebhookClaims, bson.D{{Key: "_id", Value: key}}, &held, "claim"); err != nil {
				return nil, err
			}
			if held.LeaseUntil > millis(now) {
				break // another instance holds it
			}
			gen++
		}
		if !won {
			continue
		}
		cctx, cancel := s.call(ctx)
		_, err := s.db.Collection(collWebhookDeliv).UpdateOne(cctx, bson.D{{Key: "_id", Value: c.ID}},
			bson.D{{Key: "$max", Value: bson.D{{Key: "gen", Value: gen}}},
				{Key: "$set", Value: bson.D{{Key: "lease_owner", Value: owner}, {Key: "lease_until", Value: millis(until)}}}})
		cancel()
		if err != nil {
			return nil, translate(err)
		}
		c.LeaseOwner, c.LeaseUntil = owner, millis(until)
		out = append(out, c.delivery())
	}
	return out, nil
}

// CompleteDelivery implements webhook.Store.
func (s *Store) CompleteDelivery(ctx context.Context, owner string, d webhook.Delivery) (bool, error) {
	st := d.Status
	if st == "" {
		st = webhook.StatusPending
	}
	cctx, cancel := s.call(ctx)
	defer cancel()
	res, err := s.db.Collection(collWebhookDeliv).UpdateOne(cctx, bson.D{{Key: "_id", Value: d.ID}, {Key: "lease_owner", Value: owner}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: st}, {Key: "attempts", Value: d.Attempts},
			{Key: "last_error", Value: d.LastError}, {Key: "due", Value: millis(d.Due)}, {Key: "sent_at", Value: optMillis(d.SentAt)},
			{Key: "lease_owner", Value: ""}, {Key: "lease_until", Value: int64(0)}}}})
	if err != nil {
		return false, translate(err)
	}
	return res.MatchedCount > 0, nil
}

// Delivery implements webhook.Store.
func (s *Store) Delivery(ctx context.Context, org, id string) (webhook.Delivery, error) {
	var rec deliveryRec
	if err := s.findRecord(ctx, collWebhookDeliv, bson.D{{Key: "_id", Value: id}, {Key: "org", Value: org}}, &rec, "delivery"); err != nil {
		return webhook.Delivery{}, err
	}
	return rec.delivery(), nil
}

// Deliveries implements webhook.Store.
func (s *Store) Deliveries(ctx context.Context, org, sub, status string, limit int) ([]webhook.Delivery, error) {
	filter := bson.D{{Key: "org", Value: org}, {Key: "sub", Value: sub}}
	if status != "" {
		filter = append(filter, bson.E{Key: "status", Value: status})
	}
	var recs []deliveryRec
	if err := s.findRecords(ctx, collWebhookDeliv, filter,
		options.Find().SetSort(bson.D{{Key: "created", Value: -1}, {Key: "_id", Value: 1}}).SetLimit(int64(limit)), &recs); err != nil {
		return nil, err
	}
	out := make([]webhook.Delivery, len(recs))
	for i := range recs {
		out[i] = recs[i].delivery()
	}
	return out, nil
}

// Redeliver implements webhook.Store.
func (s *Store) Redeliver(ctx context.Context, org, id string, now time.Time) error {
	cctx, cancel := s.call(ctx)
	defer cancel()
	res, err := s.db.Collection(collWebhookDeliv).UpdateOne(cctx, bson.D{{Key: "_id", Value: id}, {Key: "org", Value: org}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: webhook.StatusPending}, {Key: "attempts", Value: 0},
			{Key: "due", Value: millis(now)}, {Key: "lease_owner", Value: ""}, {Key: "lease_until", Value: int64(0)}}}})
	if err != nil {
		return translate(err)
	}
	if res.MatchedCount == 0 {
		return errNoRecord("delivery")
	}
	return nil
}
