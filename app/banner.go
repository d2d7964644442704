package app

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/fieldsync/fieldsync/mongodb"
	"github.com/fieldsync/fieldsync/sqlite"
)

// userCounter is what the banner needs of a store: whether anyone can sign
// in yet.
type userCounter interface {
	HasUsers(ctx context.Context) (bool, error)
}

// Banner prints the one block an operator reads on start: where the server
// answers, what it stores where, how push leaves, and on an empty store the
// command that creates the first admin.
func (in *Instance) Banner(ctx context.Context, w io.Writer) {
	c := in.cfg
	url := in.URL()
	store := "SQLite " + filepath.Join(c.Data, DBFile)
	if c.MongoURI != "" {
		store = fmt.Sprintf("MongoDB, database %q (the URI is not shown)", c.MongoDatabase)
	}
	fmt.Fprintf(w, "fieldsync %s is running\n", c.Version)
	fmt.Fprintf(w, "  URL      %s   (health /healthz, metrics /metrics, schemas /v1/schemas)\n", url)
	fmt.Fprintf(w, "  console  %s/console/   (back office, managers and admins sign in with their accounts)\n", url)
	fmt.Fprintf(w, "  store    %s\n", store)
	fmt.Fprintf(w, "  keys     %s\n", filepath.Join(c.Data, "keys"))
	fmt.Fprintf(w, "  push     %s\n", in.push.mode)
	if uc, ok := in.Store.(userCounter); ok {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		has, err := uc.HasUsers(cctx)
		cancel()
		if err == nil && !has {
			fmt.Fprintf(w, "  next     no user yet: create the first admin (pick your organisation id), then sign in:\n")
			fmt.Fprintf(w, "           echo 'a long passphrase' | fieldsync user add --data %s --server %s --org acme \\\n", c.Data, url)
			fmt.Fprintf(w, "             --email you@example.com --role admin --password-stdin\n")
		}
	}
	fmt.Fprintf(w, "  stop     Ctrl-C (in-flight requests finish within %s)\n", c.ShutdownTimeout)
}

var (
	_ userCounter = (*sqlite.Store)(nil)
	_ userCounter = (*mongodb.Store)(nil)
)
