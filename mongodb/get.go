package mongodb

import (
	"context"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// Get implements sync.Store: one find by _id for all refs.
func (s *Store) Get(ctx context.Context, org string, refs []engine.DocRef) (map[engine.DocRef]*engine.Document, error) {
	keys := make([]docKey, len(refs))
	for i, r := range refs {
		keys[i] = docKey{r.Collection, r.ID}
	}
	found, err := s.findDocs(ctx, org, keys)
	if err != nil {
		return nil, err
	}
	out := make(map[engine.DocRef]*engine.Document, len(found))
	for k, l := range found {
		out[engine.DocRef{Collection: k.coll, ID: k.id}] = l.Document
	}
	return out, nil
}
