package ferrettest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// TestLog: with FIELDSYNC_FERRETDB_LOG set, FerretDB's log file records
// connections and cursors, and leaves out the messages themselves.
func TestLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ferret.log")
	t.Setenv("FIELDSYNC_FERRETDB_LOG", path)
	uri, stop, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		stop()
		t.Fatal(err)
	}
	ctx := context.Background()
	c := client.Database("logged").Collection("c")
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Error(err)
	}
	if err := c.FindOne(ctx, bson.D{}).Err(); err != nil {
		t.Error(err)
	}
	client.Disconnect(ctx)
	stop()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	log := string(b)
	for _, want := range []string{`msg="Connection started"`, `msg="Creating cursor"`, `msg="Removing cursor"`} {
		if !strings.Contains(log, want) {
			t.Errorf("the log has no %s:\n%s", want, log)
		}
	}
	if strings.Contains(log, "Request message") {
		t.Errorf("the log has FerretDB's debug records of every message:\n%s", log)
	}
}
