package mongodb

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sync/engine"
)

var _ identity.ServiceAccountStore = (*Store)(nil)

// Service accounts live in service_accounts, one record per version of an
// account: _id = account id+sep+version (zero-padded), so that a write from
// version v is the insert of version v+1 and exactly one of two racing
// writes wins on MongoDB and FerretDB alike (a filtered replace is not a
// compare-and-swap on FerretDB, see identity.go). Superseded versions are
// deleted after the insert; a reader takes the highest version. Index
// {aid, version}; {org, aid} lists an organisation's accounts.
const collServiceAccounts = "service_accounts"

type serviceAccountRec struct {
	ID        string   `bson:"_id"`
	AID       string   `bson:"aid"`
	Version   int64    `bson:"version"`
	Org       string   `bson:"org"`
	Name      string   `bson:"name"`
	Roles     []string `bson:"roles"`
	KeyHash   []byte   `bson:"key_hash"`
	PrevHash  []byte   `bson:"prev_hash"`
	PrevUntil int64    `bson:"prev_until"`
	RevokedAt int64    `bson:"revoked_at"`
	Created   int64    `bson:"created"`
	Updated   int64    `bson:"updated"`
}

func (r *serviceAccountRec) account() *identity.ServiceAccount {
	a := &identity.ServiceAccount{Org: r.Org, ID: r.AID, Name: r.Name, Roles: loadedList(r.Roles), KeyHash: r.KeyHash,
		PrevHash: r.PrevHash, Version: r.Version, Created: fromMillis(r.Created), Updated: fromMillis(r.Updated)}
	if r.PrevUntil != 0 {
		a.PrevUntil = fromMillis(r.PrevUntil)
	}
	if r.RevokedAt != 0 {
		a.RevokedAt = fromMillis(r.RevokedAt)
	}
	return a
}

func (s *Store) createServiceAccountIndexes(ctx context.Context) error {
	for _, keys := range []bson.D{
		{{Key: "aid", Value: 1}, {Key: "version", Value: -1}},
		{{Key: "org", Value: 1}, {Key: "aid", Value: 1}},
	} {
		cctx, cancel := s.call(ctx)
		_, err := s.db.Collection(collServiceAccounts).Indexes().CreateOne(cctx, mongo.IndexModel{Keys: keys})
		cancel()
		if err != nil {
			return translate(fmt.Errorf("mongodb: create index on %s: %w", collServiceAccounts, err))
		}
	}
	return nil
}

// PutServiceAccount implements identity.ServiceAccountStore.
func (s *Store) PutServiceAccount(ctx context.Context, a *identity.ServiceAccount) error {
	if a.Version > 0 {
		cur, err := s.ServiceAccount(ctx, a.ID)
		if err != nil {
			return err
		}
		if cur.Version != a.Version {
			return errAccountVersion(a)
		}
	}
	next := a.Version + 1
	rec := serviceAccountRec{ID: fmt.Sprintf("%s%s%020d", a.ID, sep, next), AID: a.ID, Version: next, Org: a.Org, Name: a.Name,
		Roles: storedList(a.Roles), KeyHash: a.KeyHash, PrevHash: a.PrevHash,
		PrevUntil: optMillis(a.PrevUntil), RevokedAt: optMillis(a.RevokedAt),
		Created: millis(a.Created), Updated: millis(a.Updated)}
	cctx, cancel := s.call(ctx)
	_, err := s.db.Collection(collServiceAccounts).InsertOne(cctx, rec)
	cancel()
	if mongo.IsDuplicateKeyError(err) {
		return errAccountVersion(a)
	}
	if err != nil {
		return translate(err)
	}
	a.Version = next
	// Superseded versions only cost space: a failure here leaves them for
	// the next write.
	cctx, cancel = s.call(ctx)
	s.db.Collection(collServiceAccounts).DeleteMany(cctx, bson.D{{Key: "aid", Value: a.ID}, {Key: "version", Value: bson.D{{Key: "$lt", Value: next}}}})
	cancel()
	return nil
}

// ServiceAccount implements identity.ServiceAccountStore.
func (s *Store) ServiceAccount(ctx context.Context, id string) (*identity.ServiceAccount, error) {
	var rec serviceAccountRec
	cctx, cancel := s.call(ctx)
	defer cancel()
	err := s.db.Collection(collServiceAccounts).FindOne(cctx, bson.D{{Key: "aid", Value: id}},
		options.FindOne().SetSort(bson.D{{Key: "version", Value: -1}})).Decode(&rec)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, errNoRecord("service account")
	}
	if err != nil {
		return nil, translate(err)
	}
	return rec.account(), nil
}

// ServiceAccounts implements identity.ServiceAccountStore.
func (s *Store) ServiceAccounts(ctx context.Context, org string) ([]*identity.ServiceAccount, error) {
	var recs []serviceAccountRec
	opt := options.Find().SetSort(bson.D{{Key: "aid", Value: 1}, {Key: "version", Value: -1}})
	if err := s.findRecords(ctx, collServiceAccounts, bson.D{{Key: "org", Value: org}}, opt, &recs); err != nil {
		return nil, err
	}
	var out []*identity.ServiceAccount
	for i := range recs {
		if i > 0 && recs[i].AID == recs[i-1].AID {
			continue // an older version not deleted yet
		}
		out = append(out, recs[i].account())
	}
	return out, nil
}

func errAccountVersion(a *identity.ServiceAccount) error {
	return engine.Errorf(engine.KindConflict, identity.CodeVersionMismatch, "/version",
		"the service account changed since version %d was read", a.Version)
}
