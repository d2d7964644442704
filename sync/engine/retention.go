package engine

import "time"

// History retention (docs/operations.md, "Retention"). A store keeps every
// document's latest change per scope, which a device needs however old; it
// compacts what only a device that has not synced for a long time needs:
// tombstones and evictions (a delete, a document that left a scope), the
// recorded outcomes of retried mutations, and its own bookkeeping. Changes
// older than Retention.History are compacted:
//
//  1. a run picks the floor: a seq such that every change at or below it
//     was committed before now - History; the store announces it;
//  2. a later run, at least Retention.Wait after the announcement, deletes
//     the tombstones, evictions and bookkeeping at or below the floor.
//
// A pull whose checkpoint lies below the announced floor gets PullPage's
// Compacted, and the engine starts the device over (Reset): it pulls its
// whole read set again and keeps only what that delivers, so a document
// deleted while it was away is dropped even though its tombstone is gone.
// The wait between the two steps outlasts any pull that read the floor
// before it moved (stores may cache the floor for less than Wait). A
// device's checkpoint moves with the organisation on every pull
// (PullPage.Through), so only a device that did not pull for longer than
// History starts over. The recorded outcome of a mutation is kept for
// History too: a device retrying a push older than that is answered as if
// it were new.

// Retention says how long history is kept.
type Retention struct {
	History time.Duration // tombstones, evictions, recorded outcomes
	Wait    time.Duration // between announcing a floor and deleting below it
}

// Compaction is what one compaction run did.
type Compaction struct {
	Floor    int64 // the floor announced (a store with one sequence per organisation: the highest)
	Feed     int64 // feed rows deleted (tombstones and evictions)
	Docs     int64 // tombstones deleted
	Outcomes int64 // recorded outcomes deleted
	Markers  int64 // commit markers deleted (stores that keep them)
	Orgs     int64 // organisations visited
}
