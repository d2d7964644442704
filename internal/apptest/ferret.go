package apptest

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fieldsync/fieldsync/internal/ferrettest"
)

// The FerretDB every MongoDB test of one test binary shares, started on
// first use (with atomic single-document writes, as on MongoDB: the
// scenarios race writers on the same documents) and stopped by Main. Each
// test takes a database of its own (FreshMongoDatabase).
var (
	stopFerret func()
	ferret     = sync.OnceValues(func() (string, error) {
		uri, stop, err := ferrettest.StartAtomic()
		stopFerret = stop
		return uri, err
	})
	mongoDatabases atomic.Int64
)

// Ferret returns the MongoDB URI of the test binary's shared FerretDB.
func Ferret(t testing.TB) string {
	t.Helper()
	uri, err := ferret()
	if err != nil {
		t.Fatalf("start FerretDB: %v", err)
	}
	return uri
}

// FreshMongoDatabase names a database no other test of this process uses.
func FreshMongoDatabase() string {
	return fmt.Sprintf("fieldsync_test_%d_%d", os.Getpid(), mongoDatabases.Add(1))
}
