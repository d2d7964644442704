package attachment_test

import (
	"bytes"
	"context"
	"errors"
	"image/jpeg"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/attachment"
	"github.com/fieldsync/fieldsync/attachment/blob"
	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

func code(err error) string { return engine.ErrorCode(err) }

func TestUploadAndReadByParentScope(t *testing.T) {
	t.Parallel()
	r := newRig(t, attachment.Limits{ChunkBytes: 64 << 10})
	b := photo(1, 300<<10)
	st := r.upload(t, rep1, decl("a-1", b), b)
	if st.Status != attachment.StatusComplete || st.Attachment == nil {
		t.Fatalf("upload ended %+v", st)
	}
	a := st.Attachment
	if a.UploadedBy != "rep-1" || a.CustomerID != "c-1" || a.SHA256 != sum(b) || a.Size != int64(len(b)) || a.Caption != "before" {
		t.Fatalf("metadata %+v", a.Meta)
	}
	for _, who := range []engine.Actor{rep1, manager, admin} {
		got, err := r.content(t, who, "a-1")
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("%s reads %d bytes, err %v; want the %d uploaded", who.User, len(got), err, len(b))
		}
		if op := r.pulled(t, who)["attachments/a-1"]; op != engine.ChangePut {
			t.Fatalf("%s's pull has attachments/a-1 as %q, want put", who.User, op)
		}
	}
	for _, who := range []engine.Actor{rep2, outsider} {
		if _, err := r.content(t, who, "a-1"); code(err) != engine.CodeNotFound {
			t.Fatalf("%s/%s reads a-1: %v, want not_found", who.Org, who.User, err)
		}
		if _, err := r.svc.Status(context.Background(), who, "a-1"); code(err) != engine.CodeNotFound {
			t.Fatalf("%s/%s asks the status of a-1: %v, want not_found", who.Org, who.User, err)
		}
		if _, err := r.svc.Begin(context.Background(), who, decl("a-x", b)); code(err) != engine.CodeNotFound {
			t.Fatalf("%s/%s attaches to n-1: %v, want not_found", who.Org, who.User, err)
		}
		if op, ok := r.pulled(t, who)["attachments/a-1"]; ok {
			t.Fatalf("%s/%s's pull has attachments/a-1 (%s)", who.Org, who.User, op)
		}
	}
	// Ranges.
	_, rc, err := r.svc.Content(context.Background(), manager, "a-1", 1000, 24)
	if err != nil {
		t.Fatal(err)
	}
	var part bytes.Buffer
	part.ReadFrom(rc)
	rc.Close()
	if !bytes.Equal(part.Bytes(), b[1000:1024]) {
		t.Fatalf("range [1000,1024) = %d bytes differing", part.Len())
	}
	list, err := r.svc.List(context.Background(), manager, engine.DocRef{Collection: fieldsales.CollCustomerNotes, ID: "n-1"})
	if err != nil || len(list) != 1 || list[0].ID != "a-1" {
		t.Fatalf("List = %+v, %v", list, err)
	}
}

func TestResumeAfterLostReplyAndIdempotence(t *testing.T) {
	t.Parallel()
	r := newRig(t, attachment.Limits{ChunkBytes: 50 << 10})
	ctx := context.Background()
	b := photo(2, 200<<10)
	d := decl("a-1", b)
	st, err := r.svc.Begin(ctx, rep1, d)
	if err != nil || st.Offset != 0 {
		t.Fatal(st, err)
	}
	st, err = r.svc.Append(ctx, rep1, "a-1", 0, b[:50<<10])
	if err != nil || st.Offset != 50<<10 {
		t.Fatal(st, err)
	}
	// The reply was lost: the phone sends the same chunk again.
	_, err = r.svc.Append(ctx, rep1, "a-1", 0, b[:50<<10])
	var oe *attachment.OffsetError
	if !errors.As(err, &oe) || oe.Offset != 50<<10 || code(err) != attachment.CodeOffsetMismatch {
		t.Fatalf("repeated chunk: %v, want upload_offset_mismatch at %d", err, 50<<10)
	}
	// Later it asks where to go on, by declaring again.
	st, err = r.svc.Begin(ctx, rep1, d)
	if err != nil || st.Offset != 50<<10 || st.Status != attachment.StatusUploading {
		t.Fatalf("declared again: %+v %v", st, err)
	}
	if st, err = r.svc.Status(ctx, rep1, "a-1"); err != nil || st.Offset != 50<<10 {
		t.Fatalf("status: %+v %v", st, err)
	}
	// Another user cannot write into rep-1's session.
	if _, err := r.svc.Append(ctx, manager, "a-1", 50<<10, b[50<<10:100<<10]); code(err) != engine.CodeNotFound {
		t.Fatalf("manager appends to rep-1's upload: %v", err)
	}
	st = r.upload(t, rep1, d, b)
	if st.Status != attachment.StatusComplete {
		t.Fatal(st)
	}
	got, err := r.content(t, rep1, "a-1")
	if err != nil || !bytes.Equal(got, b) {
		t.Fatal("bytes differ after resuming", err)
	}
	// Everything again is answered with the file, and changes nothing.
	if st, err := r.svc.Begin(ctx, rep1, d); err != nil || st.Status != attachment.StatusComplete {
		t.Fatalf("declared after completion: %+v %v", st, err)
	}
	if st, err := r.svc.Append(ctx, rep1, "a-1", int64(len(b))-10, b[len(b)-10:]); err != nil || st.Status != attachment.StatusComplete {
		t.Fatalf("last chunk again: %+v %v", st, err)
	}
	// The same bytes under another id (a photo attached twice) are stored once.
	r.upload(t, rep1, decl("a-2", b), b)
	if n := r.blobCount(t); n != 1 {
		t.Fatalf("%d blobs for one photo attached twice", n)
	}
	// Reusing an id for other bytes is refused.
	other := photo(3, 10<<10)
	if _, err := r.svc.Begin(ctx, rep1, decl("a-1", other)); code(err) != attachment.CodeAttachmentExists {
		t.Fatalf("id reused for other bytes: %v", err)
	}
}

func (r *rig) blobCount(t testing.TB) int {
	t.Helper()
	n := 0
	err := r.blobs.List(context.Background(), "", func(i blob.Info) error {
		if !strings.Contains(i.Key, "/thumb/") {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// nothingStored asserts that no attachment document, no blob and no staged
// bytes exist.
func (r *rig) nothingStored(t *testing.T, id string) {
	t.Helper()
	ref := engine.DocRef{Collection: engine.CollAttachments, ID: id}
	got, err := r.store.Get(context.Background(), org, []engine.DocRef{ref})
	if err != nil || got[ref] != nil {
		t.Fatalf("attachment document %s exists (%v)", id, err)
	}
	if n := r.blobCount(t); n != 0 {
		t.Fatalf("%d blobs stored", n)
	}
	parts, _ := filepath.Glob(filepath.Join(r.dir, "staging", "*.part"))
	if len(parts) != 0 {
		t.Fatalf("staged bytes left: %v", parts)
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	b := photo(4, 40<<10)
	pdf := append([]byte("%PDF-1.7\n"), bytes.Repeat([]byte("x"), 1000)...)
	cases := []struct {
		name   string
		decl   func(d *attachment.Declaration)
		bytes  []byte
		code   string
		atByte bool // refused while the bytes arrive, not when declared
	}{
		{name: "forged hash", decl: func(d *attachment.Declaration) { d.SHA256 = sum([]byte("something else")) }, code: attachment.CodeHashMismatch, atByte: true},
		{name: "size lie: more bytes", decl: func(d *attachment.Declaration) { d.Size -= 100 }, code: attachment.CodeSizeMismatch, atByte: true},
		{name: "content is not the type", bytes: pdf, code: attachment.CodeContentMismatch, atByte: true},
		{name: "disallowed type", decl: func(d *attachment.Declaration) { d.ContentType = "image/gif" }, code: attachment.CodeTypeNotAllowed},
		{name: "executable", decl: func(d *attachment.Declaration) { d.ContentType = "application/x-msdownload" }, code: attachment.CodeTypeNotAllowed},
		{name: "oversized", decl: func(d *attachment.Declaration) { d.Size = 30 << 20 }, code: attachment.CodeTooLarge},
		{name: "path", decl: func(d *attachment.Declaration) { d.Filename = "../../etc/passwd" }, code: attachment.CodeInvalidFileName},
		{name: "directory", decl: func(d *attachment.Declaration) { d.Filename = "photos/shelf.jpg" }, code: attachment.CodeInvalidFileName},
		{name: "windows path", decl: func(d *attachment.Declaration) { d.Filename = `C:\shelf.jpg` }, code: attachment.CodeInvalidFileName},
		{name: "dot file", decl: func(d *attachment.Declaration) { d.Filename = ".htaccess" }, code: attachment.CodeInvalidFileName},
		{name: "unicode", decl: func(d *attachment.Declaration) { d.Filename = "Regal-Müller.jpg" }, code: attachment.CodeInvalidFileName},
		{name: "right-to-left override", decl: func(d *attachment.Declaration) { d.Filename = "photo\u202egpj.exe" }, code: attachment.CodeInvalidFileName},
		{name: "nul", decl: func(d *attachment.Declaration) { d.Filename = "a\x00.jpg" }, code: attachment.CodeInvalidFileName},
		{name: "bad hash", decl: func(d *attachment.Declaration) { d.SHA256 = "ABC" }, code: engine.CodeInvalidRequest},
		{name: "not a parent collection", decl: func(d *attachment.Declaration) { d.ParentCollection = "products" }, code: engine.CodeInvalidRequest},
		{name: "missing parent", decl: func(d *attachment.Declaration) { d.ParentID = "n-404" }, code: engine.CodeNotFound},
		{name: "bad location", decl: func(d *attachment.Declaration) { d.Location = &attachment.Location{Lat: 91} }, code: engine.CodeInvalidRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, attachment.Limits{ChunkBytes: 16 << 10})
			body := b
			if c.bytes != nil {
				body = c.bytes
			}
			d := decl("a-1", body)
			if c.decl != nil {
				c.decl(&d)
			}
			ctx := context.Background()
			st, err := r.svc.Begin(ctx, rep1, d)
			if !c.atByte {
				if code(err) != c.code {
					t.Fatalf("declaration: %v, want %s", err, c.code)
				}
				r.nothingStored(t, "a-1")
				return
			}
			if err != nil {
				t.Fatalf("declaration refused: %v", err)
			}
			for err == nil && st.Status == attachment.StatusUploading {
				end := min(st.Offset+st.ChunkBytes, int64(len(body)))
				st, err = r.svc.Append(ctx, rep1, "a-1", st.Offset, body[st.Offset:end])
			}
			if code(err) != c.code {
				t.Fatalf("upload: %v (status %+v), want %s", err, st, c.code)
			}
			r.nothingStored(t, "a-1")
			if _, err := r.content(t, rep1, "a-1"); code(err) != engine.CodeNotFound {
				t.Fatalf("refused file readable: %v", err)
			}
		})
	}
}

func TestLimitsPerDocumentAndOrganisation(t *testing.T) {
	t.Parallel()
	r := newRig(t, attachment.Limits{MaxPerDocument: 2, MaxOrgBytes: 100 << 10})
	ctx := context.Background()
	for i := range 2 {
		b := photo(uint64(10+i), 20<<10)
		r.upload(t, rep1, decl("a-"+string(rune('1'+i)), b), b)
	}
	b := photo(20, 20<<10)
	if _, err := r.svc.Begin(ctx, rep1, decl("a-3", b)); code(err) != attachment.CodeDocumentFull {
		t.Fatalf("third file on a two-file document: %v", err)
	}
	// Deleting one makes room.
	if err := r.svc.Delete(ctx, rep1, "a-1"); err != nil {
		t.Fatal(err)
	}
	r.upload(t, rep1, decl("a-3", b), b)
	big := photo(21, 70<<10)
	r.push(t, rep1, engine.Mutation{ID: "m-n2", Collection: fieldsales.CollCustomerNotes, DocID: "n-2", Op: engine.OpCreate,
		Doc: []byte(`{"customer_id":"c-1","text":"second"}`)})
	d := decl("a-4", big)
	d.ParentID = "n-2"
	if _, err := r.svc.Begin(ctx, rep1, d); code(err) != attachment.CodeOrgStorageFull {
		t.Fatalf("file past the organisation's quota: %v", err)
	}
}

func TestReassignmentTakesFilesAway(t *testing.T) {
	t.Parallel()
	r := newRig(t, attachment.Limits{})
	b := photo(5, 30<<10)
	r.upload(t, rep1, decl("a-1", b), b)
	if op := r.pulled(t, rep1)["attachments/a-1"]; op != engine.ChangePut {
		t.Fatalf("before: rep-1 pulls a-1 as %q", op)
	}
	r.upsert(t, admin, fieldsales.CollCustomers, "c-1", map[string]any{"assigned_reps": []string{"rep-2"}})
	if _, err := r.content(t, rep1, "a-1"); code(err) != engine.CodeNotFound {
		t.Fatalf("old rep reads the photo after reassignment: %v", err)
	}
	if op := r.pulled(t, rep1)["attachments/a-1"]; op != "" && op != engine.ChangeEvict {
		t.Fatalf("after: rep-1's pull has a-1 as %q, want evict or nothing", op)
	}
	if got, err := r.content(t, rep2, "a-1"); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("new rep cannot read the photo: %v", err)
	}
	if op := r.pulled(t, rep2)["attachments/a-1"]; op != engine.ChangePut {
		t.Fatalf("new rep's pull has a-1 as %q", op)
	}
}

func TestDeleteRetentionAndSweep(t *testing.T) {
	t.Parallel()
	r := newRig(t, attachment.Limits{})
	ctx := context.Background()
	b1, b2 := photo(6, 30<<10), photo(7, 30<<10)
	r.upload(t, rep1, decl("a-1", b1), b1)
	r.upload(t, rep1, decl("a-2", b2), b2)
	if err := r.svc.Delete(ctx, rep2, "a-1"); code(err) != engine.CodeNotFound {
		t.Fatalf("another rep deletes: %v", err)
	}
	if err := r.svc.Delete(ctx, rep1, "a-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.content(t, rep1, "a-1"); code(err) != attachment.CodeAttachmentDeleted {
		t.Fatalf("deleted file read: %v", err)
	}
	// The note goes: its files follow.
	r.push(t, rep1, engine.Mutation{ID: "m-del", Collection: fieldsales.CollCustomerNotes, DocID: "n-1", Op: engine.OpDelete, BaseVersion: 1})
	// An upload that never finished.
	r.push(t, rep1, engine.Mutation{ID: "m-n3", Collection: fieldsales.CollCustomerNotes, DocID: "n-3", Op: engine.OpCreate,
		Doc: []byte(`{"customer_id":"c-1","text":"third"}`)})
	b3 := photo(8, 30<<10)
	d3 := decl("a-3", b3)
	d3.ParentID = "n-3"
	if _, err := r.svc.Begin(ctx, rep1, d3); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Append(ctx, rep1, "a-3", 0, b3[:1000]); err != nil {
		t.Fatal(err)
	}
	sw, err := r.svc.Sweep(ctx, []string{org})
	if err != nil || sw.Orphaned != 1 || sw.Purged != 0 || sw.Abandoned != 0 {
		t.Fatalf("first sweep %+v %v, want a-2 orphaned and nothing purged yet", sw, err)
	}
	if n := r.blobCount(t); n != 2 {
		t.Fatalf("%d blobs inside the retention period, want 2", n)
	}
	r.clock.now = r.clock.now.Add(8 * 24 * time.Hour)
	sw, err = r.svc.Sweep(ctx, []string{org})
	if err != nil || sw.Purged != 2 || sw.Abandoned != 1 {
		t.Fatalf("sweep past retention %+v %v, want 2 purged and 1 abandoned session", sw, err)
	}
	r.nothingStored(t, "a-3")
	if st, err := r.svc.Status(ctx, rep1, "a-3"); code(err) != engine.CodeNotFound {
		t.Fatalf("abandoned upload still answers %+v %v", st, err)
	}
	if sw, err := r.svc.Sweep(ctx, []string{org}); err != nil || sw != (attachment.Swept{}) {
		t.Fatalf("sweeping again did %+v %v", sw, err)
	}
}

func TestThumbnail(t *testing.T) {
	t.Parallel()
	r := newRig(t, attachment.Limits{})
	ctx := context.Background()
	b := photo(9, 200<<10)
	r.upload(t, rep1, decl("a-1", b), b)
	_, th, err := r.svc.Thumbnail(ctx, manager, "a-1", 256)
	if err != nil {
		t.Fatal(err)
	}
	img, err := jpeg.Decode(bytes.NewReader(th))
	if err != nil || img.Bounds().Dx() != 256 || len(th) >= len(b)/4 {
		t.Fatalf("thumbnail %v, %d bytes (original %d): %v", img.Bounds(), len(th), len(b), err)
	}
	if _, _, err := r.svc.Thumbnail(ctx, rep2, "a-1", 256); code(err) != engine.CodeNotFound {
		t.Fatalf("another rep's thumbnail: %v", err)
	}
	if _, _, err := r.svc.Thumbnail(ctx, rep1, "a-1", 300); code(err) != engine.CodeInvalidRequest {
		t.Fatalf("odd width: %v", err)
	}
	// Served from the cache the second time, byte for byte.
	_, again, err := r.svc.Thumbnail(ctx, rep1, "a-1", 256)
	if err != nil || !bytes.Equal(again, th) {
		t.Fatalf("second thumbnail differs: %v", err)
	}
	pdf := append([]byte("%PDF-1.7\n"), bytes.Repeat([]byte("x"), 100)...)
	d := decl("a-pdf", pdf)
	d.ContentType, d.Filename = "application/pdf", "delivery note.pdf"
	r.upload(t, rep1, d, pdf)
	if _, _, err := r.svc.Thumbnail(ctx, rep1, "a-pdf", 128); code(err) != attachment.CodeNoThumbnail {
		t.Fatalf("pdf thumbnail: %v", err)
	}
}

// A crash after the bytes were complete but before the file was recorded
// is finished by the next declaration.
func TestFinishAfterCrash(t *testing.T) {
	t.Parallel()
	r := newRig(t, attachment.Limits{ChunkBytes: 32 << 10})
	ctx := context.Background()
	b := photo(11, 60<<10)
	d := decl("a-1", b)
	if _, err := r.svc.Begin(ctx, rep1, d); err != nil {
		t.Fatal(err)
	}
	// The staged bytes as the crashed process left them.
	parts, _ := filepath.Glob(filepath.Join(r.dir, "staging", "*.part"))
	if len(parts) != 0 {
		t.Fatalf("staged parts before any chunk: %v", parts)
	}
	metas, _ := filepath.Glob(filepath.Join(r.dir, "staging", "*.json"))
	if len(metas) != 1 {
		t.Fatalf("sessions: %v", metas)
	}
	if err := os.WriteFile(strings.TrimSuffix(metas[0], ".json")+".part", b, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := r.svc.Begin(ctx, rep1, d)
	if err != nil || st.Status != attachment.StatusComplete {
		t.Fatalf("declared after the crash: %+v %v", st, err)
	}
}

// A file on a follow-up carries the follow-up's role keys (granted when it
// is stored) through a reassignment of the customer: the back-office role
// keeps pulling it while the reps' keys move.
func TestRoleKeysFollowTheParent(t *testing.T) {
	t.Parallel()
	r := newRig(t, attachment.Limits{})
	r.upsert(t, admin, fieldsales.CollFollowUps, "fu-x", map[string]any{"customer_id": "c-1", "activity": "delivery", "title": "Deliver pallets",
		"responsible_role": "logistics", "status": "open"})
	b := photo(12, 20<<10)
	d := decl("a-1", b)
	d.ParentCollection, d.ParentID = fieldsales.CollFollowUps, "fu-x"
	r.upload(t, rep1, d, b)
	scopes := func() []string {
		ref := engine.DocRef{Collection: engine.CollAttachments, ID: "a-1"}
		got, err := r.store.Get(context.Background(), org, []engine.DocRef{ref})
		if err != nil || got[ref] == nil {
			t.Fatalf("a-1: %v", err)
		}
		return got[ref].Scopes
	}
	has := func(keys []string, k string) bool { return slices.Contains(keys, k) }
	if s := scopes(); !has(s, "role:logistics") || !has(s, "user:rep-1") || !has(s, "cust:c-1") {
		t.Fatalf("keys after upload: %v", s)
	}
	r.upsert(t, admin, fieldsales.CollCustomers, "c-1", map[string]any{"assigned_reps": []string{"rep-2"}})
	if s := scopes(); !has(s, "role:logistics") || has(s, "user:rep-1") || !has(s, "user:rep-2") {
		t.Fatalf("keys after reassignment: %v", s)
	}
	driver := engine.Actor{Org: org, User: "drv-1", Roles: []string{"logistics"}}
	if op := r.pulled(t, driver)["attachments/a-1"]; op != engine.ChangePut {
		t.Fatalf("logistics pulls a-1 as %q", op)
	}
}

// Devices never write attachment metadata: a push to the collection is
// refused whatever the caller's role, and nothing is stored.
func TestDevicesCannotWriteMetadata(t *testing.T) {
	t.Parallel()
	r := newRig(t, attachment.Limits{})
	b := photo(13, 10<<10)
	forged := `{"parent_collection":"customer_notes","parent_id":"n-1","customer_id":"c-1","content_type":"image/jpeg","size":` +
		strconv.Itoa(len(b)) + `,"sha256":"` + sum(b) + `","filename":"x.jpg","uploaded_by":"rep-1","uploaded_at":"2026-12-01T08:00:00Z"}`
	for _, who := range []engine.Actor{rep1, manager, admin} {
		outs, err := r.eng.Push(context.Background(), who, engine.PushRequest{DeviceID: "phone", Mutations: []engine.Mutation{{
			ID: "m-forge-" + who.User, Collection: engine.CollAttachments, DocID: "a-forged", Op: engine.OpCreate, Doc: []byte(forged)}}})
		if err != nil || outs[0].Status != engine.StatusRejected {
			t.Fatalf("%s pushes attachment metadata: %+v %v", who.User, outs, err)
		}
	}
	r.nothingStored(t, "a-forged")
}
