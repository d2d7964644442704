// Package ferrettest starts FerretDB in-process, the MongoDB-compatible
// server the tests of the MongoDB store run against (no MongoDB server can be
// installed where fieldsync is developed). Only tests import it.
package ferrettest

import (
	"context"
	"io"
	"log/slog"
	"os"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// Start runs FerretDB on a loopback port with its data in a new temporary
// directory. It returns the MongoDB URI and a stop function that shuts it
// down and removes the directory.
func Start() (uri string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "fieldsync-ferretdb-")
	if err != nil {
		return "", nil, err
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Handler:  "sqlite",
		// Tests never lose the machine under FerretDB, so its SQLite
		// files need no fsync: writes cost a fraction as much.
		SQLiteURL: "file:" + dir + "/?_pragma=synchronous(OFF)",
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
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
		os.RemoveAll(dir)
	}, nil
}
