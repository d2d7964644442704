// Package ferrettest starts FerretDB in-process, the MongoDB-compatible
// server the tests of the MongoDB store run against (no MongoDB server can be
// installed where fieldsync is developed). Only tests import it.
package ferrettest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Start runs FerretDB on a loopback port with its data in a new temporary
// directory. It returns the MongoDB URI and a stop function that shuts it
// down and removes the directory. The URI is that of a proxy in front of
// FerretDB that splits long update commands, which FerretDB alone would
// never answer (see maxUpdates).
func Start() (uri string, stop func(), err error) {
	_, uri, stop, err = startProxied(false)
	return uri, stop, err
}

// newMu serialises ferretdb.New, which writes a package variable of
// FerretDB's (version.Get().Package) without a lock: a data race when
// parallel tests each start a FerretDB.
var newMu sync.Mutex

// startFerret runs FerretDB itself: Start without the proxy.
func startFerret() (uri string, stop func(), err error) {
	log, closeLog, err := logger()
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "fieldsync-ferretdb-")
	if err != nil {
		closeLog()
		return "", nil, err
	}
	newMu.Lock()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Handler:  "sqlite",
		// Tests never lose the machine under FerretDB, so its SQLite
		// files need no fsync: writes cost a fraction as much.
		SQLiteURL: "file:" + dir + "/?_pragma=synchronous(OFF)",
		Logger:    log,
	})
	newMu.Unlock()
	if err != nil {
		closeLog()
		os.RemoveAll(dir)
		return "", nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx)
	}()
	return f.MongoDBURI(), func() {
		cancel()
		<-done
		closeLog()
		os.RemoveAll(dir)
	}, nil
}

// logger discards FerretDB's log unless FIELDSYNC_FERRETDB_LOG names a file.
// It then appends to it FerretDB's records of level info and above, and the
// debug records of its cursor registry and listener (each cursor opened and
// closed, each connection started and stopped): what a test that stalls
// inside FerretDB needs, without FerretDB's full debug log, which prints
// every message and slows every command enough to change what a test does.
// close closes the file.
func logger() (l *slog.Logger, close func(), err error) {
	path := os.Getenv("FIELDSYNC_FERRETDB_LOG")
	if path == "" {
		return slog.New(slog.DiscardHandler), func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("ferrettest: FIELDSYNC_FERRETDB_LOG: %w", err)
	}
	h := slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug})
	return slog.New(namedDebug{h, false}), func() { f.Close() }, nil
}

// namedDebug passes debug records only from the loggers FerretDB names
// "cursors" and "listener".
type namedDebug struct {
	slog.Handler
	debug bool
}

func (h namedDebug) Enabled(ctx context.Context, l slog.Level) bool {
	return (h.debug || l >= slog.LevelInfo) && h.Handler.Enabled(ctx, l)
}

func (h namedDebug) WithAttrs(attrs []slog.Attr) slog.Handler {
	debug := h.debug
	for _, a := range attrs {
		if a.Key == "name" && (a.Value.String() == "cursors" || a.Value.String() == "listener") {
			debug = true
		}
	}
	return namedDebug{h.Handler.WithAttrs(attrs), debug}
}

func (h namedDebug) WithGroup(name string) slog.Handler {
	return namedDebug{h.Handler.WithGroup(name), h.debug}
}
