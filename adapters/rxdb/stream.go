package rxdb

import (
	"context"
	"encoding/json"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// Feed tells the pull stream where an organisation's committed feed ends.
type Feed interface {
	Head(ctx context.Context, org string) (int64, error)
}

// StreamConfig is what the pull stream needs beside the engine.
type StreamConfig struct {
	Feed Feed
	// Poll is how often a stream looks at the feed's head (default 200 ms):
	// a change reaches an open stream within Poll plus one pull.
	Poll time.Duration
	// Heartbeat is how often an idle stream writes a comment, which is how
	// a closed connection is noticed (default 20 s).
	Heartbeat time.Duration
}

// Streams reports whether the pull stream is served.
func (a *Adapter) Streams() bool { return a.stream.Feed != nil }

// Stream serves replicateServer's pull stream of collection: from the feed's
// head when it opens (replicateServer pulls up to there itself when the
// stream opens), each change the caller may see is sent with the checkpoint
// after it. send writes one message (nil: a heartbeat); an error from it
// ends the stream, as does ctx or an error of the engine (a disabled user).
func (a *Adapter) Stream(ctx context.Context, actor engine.Actor, collection string, send func(*PullReply) error) error {
	cfg := a.stream
	if cfg.Feed == nil {
		return engine.Errorf(engine.KindNotFound, engine.CodeNotFound, "", "this server has no pull stream")
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 200 * time.Millisecond
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 20 * time.Second
	}
	call := func(f func(ctx context.Context) error) error {
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return f(c)
	}
	var pos int64
	if err := call(func(c context.Context) (err error) { pos, err = cfg.Feed.Head(c, actor.Org); return }); err != nil {
		return err
	}
	// The read set the stream serves: when it changes the stream ends
	// before sending anything under the new one, so replicateServer pulls
	// with its checkpoint and is told to start over (Pull).
	var start engine.Access
	if err := call(func(c context.Context) (err error) { start, err = a.eng.Access(c, actor); return }); err != nil {
		return err
	}
	poll := time.NewTicker(cfg.Poll)
	defer poll.Stop()
	idle := time.Now()
	page := a.eng.Limits().MaxPageSize
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-poll.C:
		}
		var head int64
		if err := call(func(c context.Context) (err error) { head, err = cfg.Feed.Head(c, actor.Org); return }); err != nil {
			return err
		}
		if head <= pos {
			if time.Since(idle) >= cfg.Heartbeat {
				if err := send(nil); err != nil {
					return err
				}
				idle = time.Now()
			}
			continue
		}
		var acc engine.Access
		if err := call(func(c context.Context) (err error) { acc, err = a.eng.Access(c, actor); return }); err != nil {
			return err
		}
		if acc.Fingerprint != start.Fingerprint {
			return nil
		}
		cp := a.eng.CheckpointAt(actor, pos, acc.Fingerprint)
		for {
			var res engine.PullResult
			if err := call(func(c context.Context) (err error) {
				res, err = a.eng.Pull(c, actor, engine.PullRequest{Checkpoint: cp, Limit: page})
				return
			}); err != nil {
				return err
			}
			seq, _, err := a.eng.Position(actor, res.Checkpoint)
			if err != nil {
				return err
			}
			msg := &PullReply{Documents: []json.RawMessage{}, Checkpoint: Checkpoint{ID: res.Checkpoint, LWT: seq}}
			for _, ch := range res.Changes {
				if ch.Collection == collection {
					doc, err := a.Document(ch)
					if err != nil {
						return err
					}
					msg.Documents = append(msg.Documents, doc)
				}
			}
			if len(msg.Documents) > 0 {
				if err := send(msg); err != nil {
					return err
				}
				idle = time.Now()
			}
			cp, pos = res.Checkpoint, seq
			if !res.HasMore {
				// Everything committed up to head was read (Head is the
				// committed head): others' changes need no second look.
				pos = max(pos, head)
				break
			}
		}
	}
}
