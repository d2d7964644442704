package engine

import "context"

// What the library adapters (adapters/watermelondb, adapters/rxdb) need on
// top of Push and Pull: they speak other wire formats over the same rules,
// so they must turn their own positions into checkpoints and show a device
// the server's copy of a document it may not change.

// CheckpointAt seals the checkpoint of feed position seq for actor's read
// set fingerprint, as Pull would have issued it. An adapter whose library
// keeps only a number rebuilds the checkpoint from it; a fingerprint that is
// not the caller's current one makes the next Pull start over (Reset).
func (e *Engine) CheckpointAt(actor Actor, seq int64, fingerprint string) string {
	return e.sealCheckpoint(actor, seq, fingerprint)
}

// Visible returns the current state of those of refs that actor may read and
// that are not deleted: what a pull would hand the caller. Another's
// document is absent exactly like a missing one.
func (e *Engine) Visible(ctx context.Context, actor Actor, refs []DocRef) (map[DocRef]*Document, error) {
	acc, err := e.accessOf(ctx, actor)
	if err != nil {
		return nil, err
	}
	got, err := e.store.Get(ctx, actor.Org, refs)
	if err != nil {
		return nil, err
	}
	for ref, d := range got {
		if d.Deleted || !acc.sees(d) {
			delete(got, ref)
		}
	}
	return got, nil
}
