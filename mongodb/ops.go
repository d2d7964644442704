package mongodb

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// HasUsers reports whether any organisation has a user: the start banner
// tells an operator of an empty store how to create the first admin.
func (s *Store) HasUsers(ctx context.Context) (bool, error) {
	cctx, cancel := s.call(ctx)
	defer cancel()
	n, err := s.db.Collection(collUsers).CountDocuments(cctx, bson.D{}, options.Count().SetLimit(1))
	return n > 0, translate(err)
}
