package engine

import (
	"context"
	"time"
)

// What the live stream (package stream) needs from the engine and shares
// with the stores: the caller's read set, the position a checkpoint stands
// for, and the shapes of the stores' change summary and presence records.

// ChangeSet is what changed in an organisation's feed after a position.
type ChangeSet struct {
	// Head is the committed head of the organisation's feed: no change at
	// or below it can still commit (the same rule as Store.Pull). It is
	// never below the position asked about.
	Head int64
	// Keys are the distinct scope keys of feed rows with seq in
	// (after, Head], sorted; an eviction counts under the key it leaves.
	Keys []string
	// All says there were more keys than the caller wanted to know (or
	// more rows than the store reads for one answer): Keys is nil and the
	// change may concern any scope.
	All bool
}

// Presence says that a device holds a live stream on a server instance
// until Expires, unless renewed.
type Presence struct {
	Org      string
	User     string
	Device   string
	Instance string
	Expires  time.Time
}

// Access is a caller's read set as the engine computes it for pulls.
type Access struct {
	Actor Actor // roles as the directory says
	// Keys are the sorted scope keys the caller reads.
	Keys []string
	// Fingerprint identifies Keys; checkpoints carry it.
	Fingerprint string
}

// Access resolves actor against the directory like a pull does: a disabled
// user gets the same error.
func (e *Engine) Access(ctx context.Context, actor Actor) (Access, error) {
	acc, err := e.accessOf(ctx, actor)
	if err != nil {
		return Access{}, err
	}
	return Access{Actor: acc.actor, Keys: acc.read, Fingerprint: acc.fp}, nil
}

// Position opens a checkpoint that the engine issued to actor and returns
// the feed position it stands for and the fingerprint of the read set it was
// issued for ("" is position 0).
func (e *Engine) Position(actor Actor, checkpoint string) (seq int64, fingerprint string, err error) {
	return e.openCheckpoint(actor, checkpoint)
}

// ValidID reports whether s is a valid device, mutation or document id.
func ValidID(s string) bool { return idPattern.MatchString(s) }
