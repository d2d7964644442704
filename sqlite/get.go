package sqlite

import (
	"context"
	"strings"

	engine "github.com/fieldsync/fieldsync/sync"
)

// Get implements sync.Store: one indexed read per collection and chunk of
// ids, on the reader pool, from committed data.
func (s *Store) Get(ctx context.Context, org string, refs []engine.DocRef) (map[engine.DocRef]*engine.Document, error) {
	out := make(map[engine.DocRef]*engine.Document, len(refs))
	byColl := map[string][]any{}
	for _, r := range refs {
		byColl[r.Collection] = append(byColl[r.Collection], r.ID)
	}
	for coll, ids := range byColl {
		for start := 0; start < len(ids); start += rowChunk {
			chunk := ids[start:min(start+rowChunk, len(ids))]
			q := `SELECT id, owner, version, seq, deleted, body, fields, feed, updated_at, updated_by, origin_device, origin_mid FROM docs
				WHERE org = ? AND coll = ? AND id IN (` + strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",") + `)`
			rows, err := s.r.QueryContext(ctx, q, append([]any{org, coll}, chunk...)...)
			if err != nil {
				return nil, translate(err)
			}
			for rows.Next() {
				st, err := scanDoc(rows, org, coll)
				if err != nil {
					rows.Close()
					return nil, err
				}
				out[engine.DocRef{Collection: coll, ID: st.doc.ID}] = st.doc
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, translate(err)
			}
		}
	}
	return out, nil
}
