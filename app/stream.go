package app

import (
	"log/slog"
	"time"

	"github.com/fieldsync/fieldsync/server"
	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/stream"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// StreamConfig are serve's live stream settings (docs/operations.md).
type StreamConfig struct {
	Poll       time.Duration
	Heartbeat  time.Duration
	Recheck    time.Duration
	MaxPerUser int
	MaxStreams int
}

// streamStore is what the hub needs of either store.
type streamStore interface {
	stream.Feed
	stream.Presences
}

// startStream starts the live stream hub over the store; stop ends its
// streams and removes its presence records, and must run before the store
// closes.
func startStream(f StreamConfig, store engine.Store, eng *engine.Engine, log *slog.Logger) (server.StreamConfig, func()) {
	ss, ok := store.(streamStore)
	if !ok {
		log.Warn("live stream off: the store has no change summary")
		return server.StreamConfig{}, func() {}
	}
	local, wakes := store.(interface{ OnCommit(func(org string)) })
	poll := f.Poll
	if poll <= 0 {
		poll = stream.DefaultPoll
		if _, single := store.(*sqlite.Store); single {
			poll = time.Second // one process: every commit is local and wakes the poller
		}
	}
	hub := stream.New(stream.Config{Feed: ss, Presence: ss, Poll: poll, Heartbeat: f.Heartbeat,
		Recheck: f.Recheck, MaxPerUser: f.MaxPerUser, MaxStreams: f.MaxStreams, Logger: log})
	if wakes {
		local.OnCommit(hub.Wake)
	}
	return server.StreamConfig{Hub: hub, Access: eng}, hub.Close
}
