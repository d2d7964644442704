package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// PullReport counts what a Pull did.
type PullReport struct {
	Pages   int
	Changes int
	Retries int // requests sent again after a transient failure
	// Reset says the server started the device over: its read set
	// changed, or it was away longer than the server keeps history. Its
	// copies are now exactly what this pull delivered; queued changes
	// stay queued.
	Reset bool
}

type pullChange struct {
	Op         string          `json:"op"`
	Collection string          `json:"collection"`
	ID         string          `json:"id"`
	Version    int64           `json:"version"`
	Doc        json.RawMessage `json:"doc"`
}

type pullReply struct {
	Changes    []pullChange `json:"changes"`
	Checkpoint string       `json:"checkpoint"`
	HasMore    bool         `json:"has_more"`
	// Reset: the caller's read set changed, and this pull starts over.
	Reset bool `json:"reset"`
}

// Pull reads the change feed from the saved checkpoint until has_more is
// false. Each page is applied with its checkpoint in one Save, so a crash
// never leaves the checkpoint ahead of its data: put stores the server copy,
// delete and evict remove it. Transient failures are retried as in Push. A
// 400 bad_checkpoint comes back as a *RequestError; see ResetCheckpoint.
//
// Once the feed is caught up, every mutation acknowledged before the pull is
// included in the server copies (or its document left the device's scope),
// so they stop being re-applied on top.
func (c *Client) Pull(ctx context.Context) (PullReport, error) {
	c.net.Lock()
	defer c.net.Unlock()
	var rep PullReport
	for {
		if err := c.lock(); err != nil {
			return rep, err
		}
		cp := c.state.Checkpoint
		c.mu.Unlock()
		q := url.Values{"checkpoint": {cp}, "limit": {strconv.Itoa(c.cfg.PageSize)}}
		var page pullReply
		n, err := c.call(ctx, http.MethodGet, c.base+"/v1/sync/pull?"+q.Encode(), nil, &page)
		rep.Retries += n
		if err != nil {
			return rep, err
		}
		if err := c.applyPage(&page); err != nil {
			return rep, err
		}
		rep.Pages++
		rep.Changes += len(page.Changes)
		rep.Reset = rep.Reset || page.Reset
		if !page.HasMore {
			return rep, nil
		}
		if len(page.Changes) == 0 && page.Checkpoint == cp {
			return rep, fmt.Errorf("client: pull: the server reported more changes but sent none")
		}
	}
}

// applyPage applies one page and its checkpoint in one Save. A page with a
// change the client does not understand is not applied at all.
func (c *Client) applyPage(p *pullReply) error {
	for _, ch := range p.Changes {
		if ch.Op != engine.ChangePut && ch.Op != engine.ChangeDelete && ch.Op != engine.ChangeEvict {
			return fmt.Errorf("client: pull: unknown change op %q for %s/%s", ch.Op, ch.Collection, ch.ID)
		}
	}
	if err := c.lock(); err != nil {
		return err
	}
	defer c.mu.Unlock()
	st := &c.state
	if p.Reset {
		// What the device may see changed (a new team, a role taken away):
		// the pull that starts here is the whole truth, so drop every copy.
		// Pending mutations stay queued; they are answered on the next push.
		st.Docs = map[string]map[string]Doc{}
	}
	for _, ch := range p.Changes {
		switch ch.Op {
		case engine.ChangePut:
			st.setDoc(ch.Collection, ch.ID, Doc{Version: ch.Version, Doc: ch.Doc})
			st.pruneAcked(ch.Collection, ch.ID, ch.Version)
		case engine.ChangeDelete:
			st.removeDoc(ch.Collection, ch.ID)
			st.pruneAcked(ch.Collection, ch.ID, ch.Version)
		case engine.ChangeEvict:
			st.removeDoc(ch.Collection, ch.ID)
			st.pruneAcked(ch.Collection, ch.ID, -1)
		}
	}
	st.Checkpoint = p.Checkpoint
	if !p.HasMore {
		st.Acked = nil
	}
	return c.saveLocked()
}

// ResetCheckpoint clears the pull checkpoint (for example after a 400
// bad_checkpoint), so the next Pull reads the whole feed again. Server copies
// and the queue are kept; the full pull overwrites every copy still in the
// feed. A copy of a document that is no longer in the feed at all stays until
// the device's store is cleared; with the SQLite store the feed keeps deletes
// and evicts as entries, so this does not happen today.
func (c *Client) ResetCheckpoint() error {
	c.net.Lock()
	defer c.net.Unlock()
	if err := c.lock(); err != nil {
		return err
	}
	defer c.mu.Unlock()
	c.state.Checkpoint = ""
	return c.saveLocked()
}

// SyncReport is what a Sync did.
type SyncReport struct {
	Push PushReport
	Pull PullReport
}

// Sync pushes the pending mutations, then pulls. If the push fails, the
// pull is not attempted.
func (c *Client) Sync(ctx context.Context) (SyncReport, error) {
	var rep SyncReport
	var err error
	if rep.Push, err = c.Push(ctx); err != nil {
		return rep, err
	}
	rep.Pull, err = c.Pull(ctx)
	return rep, err
}
