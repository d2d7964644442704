package rxdb

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// Changes tells one pull stream when to look at the feed. The server gives
// it from the live stream's hub (stream.Hub.Watch), so the pull streams
// wait on the poller the native live stream waits on: a commit through this
// instance wakes them at once, one through another within the hub's poll,
// and only the streams whose read set the change meets. None of them asks
// the store anything while nothing changes.
type Changes interface {
	// Ready is the feed position the stream starts after.
	Ready() int64
	// Next blocks until something the caller may see committed (changed)
	// or a heartbeat is due; ok is false once the changes end (access
	// withdrawn, the server stopping, ctx done).
	Next(ctx context.Context) (changed, ok bool)
	Close()
}

// Watch registers a pull stream's interest in the read set keys.
type Watch func(ctx context.Context, keys []string) (Changes, error)

// callTimeout bounds each engine call of a stream (the stream itself lasts
// as long as the connection).
const callTimeout = 30 * time.Second

// PullStream is one open pull stream of replicateServer (OpenStream).
type PullStream struct {
	a          *Adapter
	actor      engine.Actor
	collection string
	acc        engine.Access // the read set the stream serves
	ch         Changes
}

// OpenStream opens the pull stream of collection for actor: it reads the
// caller's read set and registers it with watch. Its errors (a disabled
// user, too many streams) come before anything is sent, so the transport
// can answer them as errors; Serve then sends.
func (a *Adapter) OpenStream(ctx context.Context, actor engine.Actor, collection string, watch Watch) (*PullStream, error) {
	acc, err := a.eng.Access(ctx, actor)
	if err != nil {
		return nil, err
	}
	ch, err := watch(ctx, acc.Keys)
	if err != nil {
		return nil, err
	}
	return &PullStream{a: a, actor: actor, collection: collection, acc: acc, ch: ch}, nil
}

// Close ends the stream's registration; Serve calls it when it returns.
func (s *PullStream) Close() { s.ch.Close() }

// Serve sends the stream: from the feed's head when it opened
// (replicateServer pulls up to there itself when the stream opens), each
// change the caller may see, with the checkpoint after it. send writes one
// message (nil: a heartbeat); an error from it ends the stream, as do ctx,
// the end of the changes, and an error of the engine (a disabled user).
//
// The stream serves the read set it opened with: when that changes, it ends
// before sending anything under the new one, so replicateServer pulls with
// its checkpoint and is told to start over (Pull).
func (s *PullStream) Serve(ctx context.Context, send func(*PullReply) error) error {
	defer s.ch.Close()
	a, actor := s.a, s.actor
	pos := s.ch.Ready()
	page := a.eng.Limits().MaxPageSize
	for {
		changed, ok := s.ch.Next(ctx)
		if !ok {
			return nil
		}
		if !changed {
			if err := send(nil); err != nil {
				return err
			}
			continue
		}
		woke := time.Now()
		cp := a.eng.CheckpointAt(actor, pos, s.acc.Fingerprint)
		for {
			res, err := a.pulls.pull(ctx, a.eng, actor, cp, page, woke)
			if err != nil {
				return err
			}
			if res.Reset {
				return nil // the read set changed (or the history was compacted past pos)
			}
			seq, _, err := a.eng.Position(actor, res.Checkpoint)
			if err != nil {
				return err
			}
			msg := &PullReply{Documents: []json.RawMessage{}, Checkpoint: Checkpoint{ID: res.Checkpoint, LWT: seq}}
			for _, ch := range res.Changes {
				if ch.Collection == s.collection {
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
			}
			cp, pos = res.Checkpoint, seq
			if !res.HasMore {
				break
			}
		}
	}
}

// sharedPulls lets the pull streams of one caller at one position share an
// engine pull: an app holds one stream per collection, and a change pokes
// them all at once, so without it each would read the same page of the
// feed. Only pulls in flight are shared, never a finished one, and a stream
// joins one only if it started after the stream was poked: an older one
// may have read the feed before the change the poke announced.
type sharedPulls struct {
	mu      sync.Mutex
	flights map[string]*flight
}

type flight struct {
	started time.Time
	joined  int // streams waiting on it beside the one that runs it
	done    chan struct{}
	res     engine.PullResult
	err     error
}

// pull is eng.Pull of page after checkpoint cp for actor, shared with the
// streams that ask for the same while it runs, if it started at or after
// notBefore.
func (p *sharedPulls) pull(ctx context.Context, eng Engine, actor engine.Actor, cp string, page int, notBefore time.Time) (engine.PullResult, error) {
	key := actor.Org + "\x00" + actor.User + "\x00" + strings.Join(actor.Roles, ",") + "\x00" + strconv.Itoa(page) + "\x00" + cp
	p.mu.Lock()
	if p.flights == nil {
		p.flights = map[string]*flight{}
	}
	f := p.flights[key]
	if f == nil || f.started.Before(notBefore) {
		f = &flight{started: time.Now(), done: make(chan struct{})}
		p.flights[key] = f
		p.mu.Unlock()
		// Not the caller's cancellation: others may be waiting on it.
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
		f.res, f.err = eng.Pull(c, actor, engine.PullRequest{Checkpoint: cp, Limit: page})
		cancel()
		p.mu.Lock()
		if p.flights[key] == f {
			delete(p.flights, key)
		}
		p.mu.Unlock()
		close(f.done)
		return f.res, f.err
	}
	f.joined++
	p.mu.Unlock()
	select {
	case <-f.done:
		return f.res, f.err
	case <-ctx.Done():
		return engine.PullResult{}, ctx.Err()
	}
}
