package mongodb

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/workflow"
)

var _ workflow.MatrixStore = (*Store)(nil)

// The workflow's collections:
//   - matrices: _id = org+sep+version (zero-padded, so an organisation's
//     versions are one _id range in version order); versions are only ever
//     inserted, and an insert into a unique _id is the one write that is
//     atomic on MongoDB and FerretDB alike: of two admins replacing the
//     matrix at once, one wins and the other gets a conflict.
//   - workflow_orgs: _id = org, the organisations the overdue sweep visits.
const (
	collMatrices     = "matrices"
	collWorkflowOrgs = "workflow_orgs"
)

type matrixRec struct {
	ID      string `bson:"_id"`
	Org     string `bson:"org"`
	Version int64  `bson:"version"`
	Body    []byte `bson:"body"`
	By      string `bson:"by"`
	Created int64  `bson:"created"`
}

// ensureWorkflowIndexes needs nothing beyond _id today: every query is an
// _id lookup or an _id range. It exists so a later index has its place.
func (s *Store) ensureWorkflowIndexes(ctx context.Context) error { return nil }

func matrixID(org string, version int64) string { return fmt.Sprintf("%s%s%019d", org, sep, version) }

// LatestMatrix implements workflow.MatrixStore.
func (s *Store) LatestMatrix(ctx context.Context, org string) (workflow.StoredMatrix, bool, error) {
	filter := bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: matrixID(org, 0)}, {Key: "$lte", Value: matrixID(org, 1<<62)}}}}
	return s.findMatrix(ctx, org, filter, options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}}))
}

// MatrixVersion implements workflow.MatrixStore.
func (s *Store) MatrixVersion(ctx context.Context, org string, version int64) (workflow.StoredMatrix, bool, error) {
	return s.findMatrix(ctx, org, bson.D{{Key: "_id", Value: matrixID(org, version)}}, options.FindOne())
}

func (s *Store) findMatrix(ctx context.Context, org string, filter bson.D, opt *options.FindOneOptionsBuilder) (workflow.StoredMatrix, bool, error) {
	cctx, cancel := s.call(ctx)
	defer cancel()
	var r matrixRec
	err := s.db.Collection(collMatrices).FindOne(cctx, filter, opt).Decode(&r)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return workflow.StoredMatrix{Org: org}, false, nil
	}
	if err != nil {
		return workflow.StoredMatrix{Org: org}, false, translate(err)
	}
	return workflow.StoredMatrix{Org: org, Version: r.Version, Raw: r.Body, By: r.By, Created: fromMillis(r.Created)}, true, nil
}

// InsertMatrix implements workflow.MatrixStore.
func (s *Store) InsertMatrix(ctx context.Context, m workflow.StoredMatrix) error {
	cctx, cancel := s.call(ctx)
	defer cancel()
	_, err := s.db.Collection(collMatrices).InsertOne(cctx, matrixRec{ID: matrixID(m.Org, m.Version), Org: m.Org,
		Version: m.Version, Body: m.Raw, By: m.By, Created: m.Created.UnixMilli()})
	if mongo.IsDuplicateKeyError(err) {
		return engine.Errorf(engine.KindConflict, engine.CodeAlreadyExists, "", "matrix version %d exists", m.Version)
	}
	return translate(err)
}

// NoteWorkflowOrg implements workflow.MatrixStore.
func (s *Store) NoteWorkflowOrg(ctx context.Context, org string) error {
	cctx, cancel := s.call(ctx)
	defer cancel()
	_, err := s.db.Collection(collWorkflowOrgs).UpdateOne(cctx, bson.D{{Key: "_id", Value: org}},
		bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "org", Value: org}}}}, options.UpdateOne().SetUpsert(true))
	if mongo.IsDuplicateKeyError(err) {
		return nil // another instance inserted it first
	}
	return translate(err)
}

// WorkflowOrgs implements workflow.MatrixStore.
func (s *Store) WorkflowOrgs(ctx context.Context) ([]string, error) {
	cctx, cancel := s.call(ctx)
	defer cancel()
	cur, err := s.db.Collection(collWorkflowOrgs).Find(cctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, translate(err)
	}
	var recs []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(cctx, &recs); err != nil {
		return nil, translate(err)
	}
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out, nil
}
