package workflow

import (
	"encoding/json"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
)

// A follow-up's history (follow_ups.json) is recorded by the writes that
// make it: each appends its entry to the history it read, and expects the
// document still at the version it read (engine.Expect.Version), so two
// writers racing cannot drop each other's entry; the loser reads again.

// Actions a follow-up's history records.
const (
	HistCreated   = "created"   // routed from an order by the matrix
	HistRaised    = "raised"    // raised by a rep, routed by the matrix
	HistClaimed   = "claimed"   // ActClaim
	HistStarted   = "started"   // ActStart
	HistBlocked   = "blocked"   // ActBlock, with its reason
	HistCompleted = "completed" // ActComplete
	HistCancelled = "cancelled" // its order cancelled, or not routable
	HistEscalated = "escalated" // the overdue sweep
)

// histAction is the history's name of an action of the follow-up API.
var histAction = map[string]string{ActClaim: HistClaimed, ActStart: HistStarted, ActBlock: HistBlocked, ActComplete: HistCompleted}

// event is a history entry made now.
func event(at time.Time, action, by, reason string) fieldsales.FollowUpEvent {
	return fieldsales.FollowUpEvent{At: stamp(at), Action: action, By: by, Reason: reason}
}

// withEvent returns the history body holds with ev appended. Past
// fieldsales.MaxFollowUpHistory entries it keeps the first (how the
// follow-up came to be) and the latest.
func withEvent(body map[string]any, ev fieldsales.FollowUpEvent) json.RawMessage {
	var h []json.RawMessage
	if b, err := json.Marshal(body["history"]); err == nil {
		json.Unmarshal(b, &h) // absent or not a list: a history starts here
	}
	h = append(h, raw(ev))
	if n := fieldsales.MaxFollowUpHistory; len(h) > n {
		h = append(h[:1], h[len(h)-n+1:]...)
	}
	return raw(h)
}
