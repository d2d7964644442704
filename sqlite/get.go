package sqlite

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/sync/feed"
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
			// Per-field metadata is left out: Get serves reads (scope
			// resolution, upserts), and decoding it was most of its cost.
			q := `SELECT id, owner, version, seq, deleted, body, feed, updated_at, updated_by FROM docs
				WHERE org = ? AND coll = ? AND id IN (` + strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",") + `)`
			rows, err := s.r.QueryContext(ctx, q, append([]any{org, coll}, chunk...)...)
			if err != nil {
				return nil, translate(err)
			}
			for rows.Next() {
				d := &engine.Document{Org: org, Collection: coll}
				var deleted int
				var body, feedRaw []byte
				var updated int64
				if err := rows.Scan(&d.ID, &d.Owner, &d.Version, &d.Seq, &deleted, &body, &feedRaw, &updated, &d.UpdatedBy); err != nil {
					rows.Close()
					return nil, translate(err)
				}
				d.Body, d.Deleted, d.UpdatedAt = body, deleted != 0, time.UnixMilli(updated).UTC()
				var positions map[string]feed.Pos
				if err := decodeFeed(feedRaw, &positions); err != nil {
					rows.Close()
					return nil, fmt.Errorf("sqlite: decode feed of %s/%s: %w", coll, d.ID, err)
				}
				for scope, f := range positions {
					if !f.Revoked {
						d.Scopes = append(d.Scopes, scope)
					}
				}
				slices.Sort(d.Scopes)
				out[engine.DocRef{Collection: coll, ID: d.ID}] = d
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, translate(err)
			}
		}
	}
	return out, nil
}
