package main

import (
	"flag"
	"log/slog"
	"time"

	"github.com/fieldsync/fieldsync/server"
	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/stream"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// streamFlags are serve's live stream settings (docs/operations.md).
type streamFlags struct {
	Poll       time.Duration
	Heartbeat  time.Duration
	Recheck    time.Duration
	MaxPerUser int
	MaxStreams int
}

func (f *streamFlags) register(fs *flag.FlagSet) {
	fs.DurationVar(&f.Poll, "stream-poll", 0, "how often the live stream asks the store for changes written through other instances; 0: 50ms on MongoDB, 1s on SQLite, where local commits wake it at once (env FIELDSYNC_STREAM_POLL)")
	fs.DurationVar(&f.Heartbeat, "stream-heartbeat", stream.DefaultHeartbeat, "heartbeat of idle live streams and renewal of presence records (env FIELDSYNC_STREAM_HEARTBEAT)")
	fs.DurationVar(&f.Recheck, "stream-recheck", stream.DefaultRecheck, "how often a live stream's token and access are checked again (env FIELDSYNC_STREAM_RECHECK)")
	fs.IntVar(&f.MaxPerUser, "stream-max-per-user", stream.DefaultMaxPerUser, "devices of one user that may stream from this instance (env FIELDSYNC_STREAM_MAX_PER_USER)")
	fs.IntVar(&f.MaxStreams, "stream-max", stream.DefaultMaxStreams, "live streams this instance holds (env FIELDSYNC_STREAM_MAX)")
}

// streamStore is what the hub needs of either store.
type streamStore interface {
	stream.Feed
	stream.Presences
}

// startStream starts the live stream hub over the store; stop ends its
// streams and removes its presence records, and must run before the store
// closes.
func startStream(f streamFlags, store engine.Store, eng *engine.Engine, log *slog.Logger) (server.StreamConfig, func()) {
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
