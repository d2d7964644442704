package identity_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/internal/ferrettest"
	"github.com/fieldsync/fieldsync/mongodb"
)

// mongoURI is the FerretDB every MongoDB test of the package shares; each
// store gets a database of its own.
var mongoURI string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	// Through the atomic proxy: the store relies on MongoDB's single-document
	// atomicity (a version-filtered replace is its optimistic lock), which
	// FerretDB alone does not give (docs/scaling.md, "Testing without MongoDB").
	uri, stop, err := ferrettest.StartAtomic()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start FerretDB:", err)
		return 1
	}
	defer stop()
	mongoURI = uri
	return m.Run()
}

var dbCounter atomic.Int64

func openMongo(t *testing.T) identity.Store {
	t.Helper()
	db := fmt.Sprintf("fieldsync_identity_%d_%d", os.Getpid(), dbCounter.Add(1))
	s, err := mongodb.Open(context.Background(), mongoURI, db, mongodb.Options{})
	if err != nil {
		t.Fatalf("Open(%s): %v", db, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// TestServiceMongo runs the service scenarios on the MongoDB store.
func TestServiceMongo(t *testing.T) {
	runService(t, openMongo)
}
