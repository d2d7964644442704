package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// PushReport counts what a Push did.
type PushReport struct {
	Sent     int // mutations acknowledged by the server (Applied + Merged + Rejected)
	Applied  int
	Merged   int
	Rejected int
	// Conflicts are the fields where the device's value was not kept.
	Conflicts []engine.Conflict
	Retries   int // requests sent again after a transient failure
}

type pushReply struct {
	Results []engine.Outcome `json:"results"`
}

// Push sends the pending mutations in order, in batches of BatchSize, until
// the queue is empty. A batch that fails transiently is sent again with the
// same mutation ids, so a reply lost after the server committed costs nothing.
// Each acknowledged batch is removed from the queue in one Save:
//
//   - applied: the change is stored; it stays visible, and gives the
//     base_version of later edits, until a pull brings its version.
//   - merged: the returned document and version replace the server copy;
//     OnConflict is called when fields conflicted.
//   - rejected: dropped, so the server copy shows again; OnReject is called.
//
// A whole-request refusal (4xx other than 429) is returned as a
// *RequestError and drops nothing.
func (c *Client) Push(ctx context.Context) (PushReport, error) {
	c.net.Lock()
	defer c.net.Unlock()
	var rep PushReport
	for {
		batch, err := c.nextBatch()
		if err != nil || len(batch) == 0 {
			return rep, err
		}
		// Each attempt carries the device's clock at sending (device_time),
		// from which the server corrects the visit times of the batch.
		body := func() ([]byte, error) {
			b, err := json.Marshal(engine.PushRequest{DeviceID: c.cfg.DeviceID, Mutations: batch,
				DeviceTime: c.cfg.Now().Format(time.RFC3339Nano)})
			if err != nil {
				return nil, fmt.Errorf("client: encode push: %w", err)
			}
			return b, nil
		}
		var reply pushReply
		n, err := c.call(ctx, http.MethodPost, c.base+"/v1/sync/push", body, &reply)
		rep.Retries += n
		if err != nil {
			return rep, err
		}
		notify, err := c.acknowledge(batch, reply.Results, &rep)
		if err != nil {
			return rep, err
		}
		for _, f := range notify {
			f()
		}
	}
}

// nextBatch returns a copy of the head of the queue and counts the attempt.
// Only Push removes from the queue and pushes run one at a time, so the same
// entries are still at the head when the reply comes back.
func (c *Client) nextBatch() ([]engine.Mutation, error) {
	if err := c.lock(); err != nil {
		return nil, err
	}
	defer c.mu.Unlock()
	n := min(len(c.state.Queue), c.cfg.BatchSize)
	batch := make([]engine.Mutation, n)
	for i := range n {
		c.state.Queue[i].Attempts++
		batch[i] = c.state.Queue[i].Mutation
	}
	return batch, nil
}

// acknowledge applies the outcomes of batch and saves them with the shorter
// queue. It returns the callbacks to run once the lock is released. If the
// save fails nothing is lost: the batch is still queued, and sending it again
// returns the outcomes the server recorded.
func (c *Client) acknowledge(batch []engine.Mutation, results []engine.Outcome, rep *PushReport) ([]func(), error) {
	if len(results) != len(batch) {
		return nil, fmt.Errorf("client: push: %d results for %d mutations", len(results), len(batch))
	}
	for i, o := range results {
		switch {
		case o.MutationID != batch[i].ID:
			return nil, fmt.Errorf("client: push: result %d is for mutation %q, not %q", i, o.MutationID, batch[i].ID)
		case o.Status != engine.StatusApplied && o.Status != engine.StatusMerged && o.Status != engine.StatusRejected:
			return nil, fmt.Errorf("client: push: mutation %q has unknown status %q", o.MutationID, o.Status)
		}
	}
	if err := c.lock(); err != nil {
		return nil, err
	}
	defer c.mu.Unlock()
	st := &c.state
	for i, m := range batch {
		if i >= len(st.Queue) || st.Queue[i].Mutation.ID != m.ID {
			return nil, fmt.Errorf("client: push: the queue changed under mutation %q", m.ID)
		}
	}
	var notify []func()
	var r PushReport
	for i, m := range batch {
		o := results[i]
		if c.cfg.OnOutcome != nil {
			notify = append(notify, func() { c.cfg.OnOutcome(m, o) })
		}
		switch {
		case o.Replayed && o.Status != engine.StatusRejected:
			// The first answer was lost and the device may have pulled
			// since (a newer version, a delete, an eviction): keep what it
			// pulled. Until its next pull completes, the mutation still
			// shows over a copy older than the recorded version.
			r.Applied++
			st.Acked = append(st.Acked, Acked{Mutation: m, Version: o.Version})
		case o.Status == engine.StatusApplied:
			r.Applied++
			st.Acked = append(st.Acked, Acked{Mutation: m, Version: o.Version})
		case o.Status == engine.StatusMerged:
			r.Merged++
			if o.Doc != nil && o.Version >= st.Docs[m.Collection][m.DocID].Version {
				st.setDoc(m.Collection, m.DocID, Doc{Version: o.Version, Doc: o.Doc})
				st.pruneAcked(m.Collection, m.DocID, o.Version)
			}
			if len(o.Conflicts) > 0 {
				r.Conflicts = append(r.Conflicts, o.Conflicts...)
				if c.cfg.OnConflict != nil {
					notify = append(notify, func() { c.cfg.OnConflict(m, o) })
				}
			}
		case o.Status == engine.StatusRejected:
			r.Rejected++
			if c.cfg.OnReject != nil {
				notify = append(notify, func() { c.cfg.OnReject(m, o) })
			}
		}
	}
	rest := make([]Pending, len(st.Queue)-len(batch))
	copy(rest, st.Queue[len(batch):])
	st.Queue = rest
	if err := c.saveLocked(); err != nil {
		return nil, err
	}
	rep.Sent += len(batch)
	rep.Applied += r.Applied
	rep.Merged += r.Merged
	rep.Rejected += r.Rejected
	rep.Conflicts = append(rep.Conflicts, r.Conflicts...)
	return notify, nil
}
