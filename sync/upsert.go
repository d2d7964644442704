package sync

import "context"

// Upsert applies server-side writes as actor (an admin, or the system for
// imports and connectors): each document is created when missing or has
// the given fields set. It is idempotent: writing values a document already
// holds changes nothing and is answered "applied" with the current version.
// source names the writer in field history ("import", "admin"). Server-side
// writes may set read-only fields; they are still validated by the schemas.
// Changing a customer's assigned_reps moves every document attached to it to
// the new reps' scopes.
func (e *Engine) Upsert(ctx context.Context, actor Actor, source string, docs []UpsertDoc) ([]Outcome, error) {
	return nil, Errorf(KindUnavailable, CodeUnavailable, "", "upsert is not built yet")
}
