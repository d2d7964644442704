package ferrettest

import (
	"context"
	"maps"
	"sync"
	"sync/atomic"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// TestStartAtomic races writers on one document through the proxy of
// StartAtomic and StartCounted, the compare-and-swap and the counter the
// MongoDB store relies on: of 16 replaces conditional on the same version
// exactly one matches, and 16 concurrent $inc return 16 different values,
// as on MongoDB. The proxy counted every command.
func TestStartAtomic(t *testing.T) {
	uri, commands, stop, err := StartCounted()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	c := client.Database("atomic").Collection("c")
	if _, err := c.InsertOne(ctx, bson.D{{Key: "_id", Value: "doc"}, {Key: "version", Value: 1}}); err != nil {
		t.Fatal(err)
	}

	const writers = 16
	var wins atomic.Int64
	seen := make([]int64, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			res, err := c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: "doc"}, {Key: "version", Value: 1}},
				bson.D{{Key: "_id", Value: "doc"}, {Key: "version", Value: 2}, {Key: "by", Value: i}})
			if err != nil {
				t.Error(err)
				return
			}
			wins.Add(res.MatchedCount)
			var got struct {
				N int64 `bson:"n"`
			}
			err = c.FindOneAndUpdate(ctx, bson.D{{Key: "_id", Value: "counter"}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: 1}}}},
				options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)).Decode(&got)
			if err != nil && !mongo.IsDuplicateKeyError(err) { // two first upserts: one inserts
				t.Error(err)
			}
			seen[i] = got.N
		})
	}
	wg.Wait()
	if n := wins.Load(); n != 1 {
		t.Errorf("%d of %d replaces conditional on version 1 matched; want exactly 1", n, writers)
	}
	want := map[string]int64{"insert c": 1, "update c": writers, "findAndModify c": writers}
	if got := commands(); !maps.Equal(got, want) {
		t.Errorf("commands counted: %v, want %v", got, want)
	}
	values := map[int64]bool{}
	for _, n := range seen {
		if n != 0 && values[n] {
			t.Errorf("$inc returned %d twice: %v", n, seen)
		}
		values[n] = true
	}
}
