package attachment_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/attachment"
	"github.com/fieldsync/fieldsync/attachment/blob"
	"github.com/fieldsync/fieldsync/attachment/disk"
	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/internal/testphoto"
	"github.com/fieldsync/fieldsync/schemas"
	"github.com/fieldsync/fieldsync/sqlite"
	"github.com/fieldsync/fieldsync/sync/engine"
)

const org = "acme"

var (
	admin   = engine.Actor{Org: org, User: "admin-1", Roles: []string{fieldsales.RoleAdmin}}
	rep1    = engine.Actor{Org: org, User: "rep-1", Roles: []string{fieldsales.RoleRep}}
	rep2    = engine.Actor{Org: org, User: "rep-2", Roles: []string{fieldsales.RoleRep}}
	manager = engine.Actor{Org: org, User: "mgr-1", Roles: []string{fieldsales.RoleManager}}
	// outsider is rep-1's namesake in another organisation.
	outsider = engine.Actor{Org: "globex", User: "rep-1", Roles: []string{fieldsales.RoleRep}}
)

// leads is the directory the engine asks: the manager leads rep-1.
type leads struct{}

func (leads) Member(_ context.Context, o, user string) (engine.Member, bool, error) {
	if o == org && user == manager.User {
		return engine.Member{Roles: manager.Roles, Reports: []string{rep1.User}}, true, nil
	}
	return engine.Member{}, false, nil
}

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

type rig struct {
	store *sqlite.Store
	eng   *engine.Engine
	blobs blob.Store
	svc   *attachment.Service
	clock *clock
	dir   string
}

func newRig(t testing.TB, limits attachment.Limits) *rig {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sch, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	// The clock starts at the wall clock's time: blob stores stamp objects
	// with real times, which the sweep compares with this clock.
	clk := &clock{now: time.Now().UTC().Truncate(time.Second)}
	eng, err := engine.New(ctx, engine.Config{Rules: fieldsales.New(fieldsales.VisitRules{}), Store: st, Schemas: sch, Directory: leads{}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := disk.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := attachment.New(attachment.Config{Engine: eng, Docs: st, Blobs: blobs, Staging: filepath.Join(dir, "staging"),
		Limits: limits, Now: clk.Now, Retention: 7 * 24 * time.Hour, Abandoned: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{store: st, eng: eng, blobs: blobs, svc: svc, clock: clk, dir: dir}
	r.upsert(t, admin, fieldsales.CollCustomers, "c-1", map[string]any{"name": "Pumpen AG", "assigned_reps": []string{"rep-1"}})
	r.upsert(t, admin, fieldsales.CollCustomers, "c-2", map[string]any{"name": "Other GmbH", "assigned_reps": []string{"rep-2"}})
	r.push(t, rep1, engine.Mutation{ID: "m-note", Collection: fieldsales.CollCustomerNotes, DocID: "n-1", Op: engine.OpCreate,
		Doc: json.RawMessage(`{"customer_id":"c-1","text":"shelf half empty"}`)})
	return r
}

func (r *rig) upsert(t testing.TB, actor engine.Actor, coll, id string, fields map[string]any) {
	t.Helper()
	d := engine.UpsertDoc{Collection: coll, ID: id, Fields: map[string]json.RawMessage{}}
	for k, v := range fields {
		b, _ := json.Marshal(v)
		d.Fields[k] = b
	}
	outs, err := r.eng.Upsert(context.Background(), actor, "test", []engine.UpsertDoc{d})
	if err != nil || outs[0].Status == engine.StatusRejected {
		t.Fatalf("upsert %s/%s: %v %+v", coll, id, err, outs)
	}
}

func (r *rig) push(t testing.TB, actor engine.Actor, muts ...engine.Mutation) {
	t.Helper()
	outs, err := r.eng.Push(context.Background(), actor, engine.PushRequest{DeviceID: "phone-" + actor.User, Mutations: muts})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range outs {
		if o.Status == engine.StatusRejected {
			t.Fatalf("push %s: %+v", o.MutationID, o.Error)
		}
	}
}

// pulled returns what a full pull hands actor: collection/id -> op.
func (r *rig) pulled(t testing.TB, actor engine.Actor) map[string]string {
	t.Helper()
	got := map[string]string{}
	cp := ""
	for {
		res, err := r.eng.Pull(context.Background(), actor, engine.PullRequest{Checkpoint: cp})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range res.Changes {
			got[c.Collection+"/"+c.ID] = c.Op()
		}
		cp = res.Checkpoint
		if !res.HasMore {
			return got
		}
	}
}

// photo returns a real JPEG of about n bytes.
func photo(seed uint64, n int) []byte { return testphoto.JPEG(seed, n) }

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func decl(id string, b []byte) attachment.Declaration {
	return attachment.Declaration{ID: id, ParentCollection: fieldsales.CollCustomerNotes, ParentID: "n-1", Filename: "shelf.jpg",
		ContentType: "image/jpeg", Size: int64(len(b)), SHA256: sum(b), Caption: "before"}
}

// upload sends b in chunks of the server's size.
func (r *rig) upload(t testing.TB, actor engine.Actor, d attachment.Declaration, b []byte) attachment.Status {
	t.Helper()
	ctx := context.Background()
	st, err := r.svc.Begin(ctx, actor, d)
	if err != nil {
		t.Fatalf("begin %s: %v", d.ID, err)
	}
	for st.Status == attachment.StatusUploading {
		end := min(st.Offset+st.ChunkBytes, int64(len(b)))
		if st, err = r.svc.Append(ctx, actor, d.ID, st.Offset, b[st.Offset:end]); err != nil {
			t.Fatalf("append %s: %v", d.ID, err)
		}
	}
	return st
}

func (r *rig) content(t testing.TB, actor engine.Actor, id string) ([]byte, error) {
	t.Helper()
	_, rc, err := r.svc.Content(context.Background(), actor, id, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(rc)
	return b.Bytes(), err
}
