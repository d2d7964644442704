package ferrettest

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// longUpdate is one more statement than FerretDB's SQLite pool has
// connections.
const longUpdate = 101

// seedDocs inserts documents 0..n-1 with v 0 into db.c.
func seedDocs(t *testing.T, client *mongo.Client, db string, n int) *mongo.Collection {
	t.Helper()
	c := client.Database(db).Collection("c")
	docs := make([]any, n)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: i}, {Key: "v", Value: 0}}
	}
	if _, err := c.InsertMany(context.Background(), docs); err != nil {
		t.Fatal(err)
	}
	return c
}

// setV updates every listed document: one statement each.
func setV(ids ...int) []mongo.WriteModel {
	models := make([]mongo.WriteModel, len(ids))
	for i, id := range ids {
		models[i] = mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}).
			SetUpdate(bson.D{{Key: "$set", Value: bson.D{{Key: "v", Value: 1}}}})
	}
	return models
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// stallWait is how long a command must stay unanswered to count as stalled:
// many times what the bulk write takes on a loaded machine when it answers.
// stuckWait is as long for the find that follows it: one document by _id,
// answered in milliseconds by a database that is not stalled.
const stallWait, stuckWait = 20 * time.Second, 10 * time.Second

// TestFerretDBStallsOnLongUpdate pins the FerretDB behaviour maxUpdates
// works around: one update command whose statements match 100 or more
// documents never returns, and every later command on its database waits
// for ever, while other databases still answer. When an upgrade of FerretDB
// makes this test fail, the split in the proxy can go.
func TestFerretDBStallsOnLongUpdate(t *testing.T) {
	t.Parallel()
	uri, stop, err := startFerret()
	if err != nil {
		t.Fatal(err)
	}
	// Stopping FerretDB cancels the stuck command after its grace period
	// for connections (a few seconds).
	defer stop()
	// The timeouts bound a command that never returns: how long the test
	// waits before it calls it stalled, not a time any command must keep.
	// They are long because a stall is told from a slow answer only by
	// waiting: with two `go test ./...` on 2 cores the same bulk write took
	// over 2 s and then answered, and the test took that for a stall.
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetTimeout(stallWait))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	c := seedDocs(t, client, "stalled", longUpdate)
	ctx := context.Background()
	if _, err := c.BulkWrite(ctx, setV(seq(longUpdate)...)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("bulk write of %d updates on FerretDB itself: %v; want it never answered", longUpdate, err)
	}
	fctx, cancel := context.WithTimeout(ctx, stuckWait)
	defer cancel()
	if err := c.FindOne(fctx, bson.D{{Key: "_id", Value: 0}}).Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("find after the stalled update: %v; want the database stalled", err)
	}
	other, err := mongo.Connect(options.Client().ApplyURI(uri).SetTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Disconnect(context.Background())
	seedDocs(t, other, "other", 1)
}

// TestSplitUpdate runs through the proxy of Start the bulk writes FerretDB
// alone never answers, and checks the one reply the driver gets is the one
// FerretDB gives to a whole command it answers: counts summed, upserted ids
// in order; a failing statement ends the command with its error.
func TestSplitUpdate(t *testing.T) {
	t.Parallel()
	uri, stop, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(context.Background())
	c := seedDocs(t, client, "split", longUpdate)
	ctx := context.Background()

	res, err := c.BulkWrite(ctx, setV(seq(longUpdate)...))
	if err != nil {
		t.Fatal(err)
	}
	if res.MatchedCount != longUpdate || res.ModifiedCount != longUpdate {
		t.Errorf("bulk write of %d updates: matched %d, modified %d; want %d each",
			longUpdate, res.MatchedCount, res.ModifiedCount, longUpdate)
	}
	if n, err := c.CountDocuments(ctx, bson.D{{Key: "v", Value: 1}}); err != nil || n != longUpdate {
		t.Errorf("documents updated: %d (%v); want %d", n, err, longUpdate)
	}

	// Replaces of the existing documents, then upserts of new ones in the
	// later chunks. FerretDB numbers upserted ids by upsert, not by
	// statement: the driver files them under 0..19.
	var models []mongo.WriteModel
	for i := range longUpdate + 20 {
		models = append(models, mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: i}}).
			SetReplacement(bson.D{{Key: "v", Value: 2}}).SetUpsert(true))
	}
	res, err = c.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	if err != nil {
		t.Fatal(err)
	}
	if res.MatchedCount != longUpdate || res.ModifiedCount != longUpdate || res.UpsertedCount != 20 {
		t.Errorf("replaces: matched %d, modified %d, upserted %d; want %d, %d, 20",
			res.MatchedCount, res.ModifiedCount, res.UpsertedCount, longUpdate, longUpdate)
	}
	for i := range 20 {
		if id, ok := res.UpsertedIDs[int64(i)]; !ok || id != int32(longUpdate+i) {
			t.Errorf("upserted id %d: %v (%v); want %d", i, id, ok, longUpdate+i)
		}
	}
	if n, err := c.CountDocuments(ctx, bson.D{{Key: "v", Value: 2}}); err != nil || n != longUpdate+20 {
		t.Errorf("documents replaced or upserted: %d (%v); want %d", n, err, longUpdate+20)
	}

	// A statement that fails in the fourth chunk ends the command there:
	// the statements before it are applied, the ones after it are not.
	models = setV(seq(longUpdate)...)
	models[50] = mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: 50}}).
		SetUpdate(bson.D{{Key: "$inc", Value: bson.D{{Key: "v", Value: "one"}}}})
	if _, err := c.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false)); err == nil {
		t.Error("bulk write with an $inc of a string: no error")
	}
	if n, err := c.CountDocuments(ctx, bson.D{{Key: "v", Value: 1}}); err != nil || n != 50 {
		t.Errorf("documents updated before the failing statement: %d (%v); want 50", n, err)
	}
}
