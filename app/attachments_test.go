package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/fieldsync/fieldsync/client"
	"github.com/fieldsync/fieldsync/internal/faultproxy"
	"github.com/fieldsync/fieldsync/internal/patience"
	"github.com/fieldsync/fieldsync/internal/testphoto"
)

// attachmentWorld is acme with a team (rep-1 led by mgr-1), another rep,
// customer c-1 of rep-1 and a note n-1 on it; chunks of 64 KiB.
func attachmentWorld(t *testing.T, store accStore) *accWorld {
	t.Helper()
	tweak := store(t)
	ts := startServer(t, "", func(c *serveConfig) {
		fastSignIn(c)
		c.Attachments.Limits.ChunkBytes = 64 << 10
		if tweak != nil {
			tweak(c)
		}
	})
	w := &accWorld{T: t, Server: ts}
	w.AddTeam("acme", "t1")
	w.AddUser("acme", accUser{ID: "rep-1", Roles: []string{"rep"}, Teams: []string{"t1"}})
	w.AddUser("acme", accUser{ID: "rep-2", Roles: []string{"rep"}})
	w.AddUser("acme", accUser{ID: "mgr-1", Roles: []string{"manager"}, Leads: []string{"t1"}})
	ts.Customer(t, "acme", "c-1", "rep-1")
	w.MustApply(w.Token("acme", "rep-1"), "phone-0", []map[string]any{mCreate("m-n1", "customer_notes", "n-1",
		map[string]any{"customer_id": "c-1", "text": "shelf before and after"})})
	return w
}

// download GETs a file with tok and returns status, body and headers.
func download(t testing.TB, base, tok, id string, hdr map[string]string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest("GET", base+"/v1/attachments/"+id+"/content", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b, resp.Header
}

// TestAttachmentsThroughFaultyNetwork: a phone uploads three photos through
// a proxy that cuts connections mid-chunk and loses replies. Every photo
// arrives once, byte for byte, and shows on the note for the rep and their
// manager; another rep and another organisation get 404 for the same URL.
func TestAttachmentsThroughFaultyNetwork(t *testing.T) {
	t.Parallel()
	w := attachmentWorld(t, onSQLite)
	ts := w.Server
	proxy, err := faultproxy.Start(strings.TrimPrefix(ts.URL, "http://"),
		faultproxy.Faults{CutRequest: 0.25, CutWithin: 80 << 10, LoseReply: 0.2, Seed: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	rep, mgr := w.Token("acme", "rep-1"), w.Token("acme", "mgr-1")
	phone, err := client.New(client.Config{BaseURL: "http://" + proxy.Addr(), Token: client.StaticToken(rep), DeviceID: "phone-1",
		HTTPClient: &http.Client{Timeout: patience.Of(t), Transport: &http.Transport{DisableKeepAlives: true}}, BackoffInitial: time.Millisecond,
		BackoffMax: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(3*time.Minute, patience.Of(t)))
	defer cancel()
	photos := map[string][]byte{}
	dir := t.TempDir()
	for i := range 3 {
		b := testphoto.JPEG(uint64(100+i), 300<<10)
		path := filepath.Join(dir, fmt.Sprintf("shelf-%d.jpg", i))
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		id, err := phone.Attach(client.FileSpec{ParentCollection: "customer_notes", ParentID: "n-1", Path: path,
			ContentType: "image/jpeg", Caption: fmt.Sprintf("shelf %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		photos[id] = b
	}
	chunks := 0
	for len(phone.PendingFiles()) > 0 {
		rep, err := phone.UploadFiles(ctx)
		chunks += rep.Chunks
		if len(rep.Rejected) > 0 || len(rep.Waiting) > 0 {
			t.Fatalf("rejected %v, waiting %v", rep.Rejected, rep.Waiting)
		}
		if err != nil && ctx.Err() != nil {
			t.Fatalf("uploads did not finish: %v", err)
		}
	}
	c := proxy.Counts()
	if c.Cut == 0 || c.Lost == 0 {
		t.Fatalf("the proxy struck no fault of some kind: %+v", c)
	}
	t.Logf("%d chunks sent for 3 photos of 300 KiB in 64 KiB chunks; proxy: %+v", chunks, c)

	for id, b := range photos {
		for _, tok := range []string{rep, mgr} {
			st, got, h := download(t, ts.URL, tok, id, nil)
			if st != 200 || !bytes.Equal(got, b) || h.Get("ETag") != `"`+sha(b)+`"` {
				t.Fatalf("%s: status %d, %d bytes (want %d), etag %s", id, st, len(got), len(b), h.Get("ETag"))
			}
		}
		for _, tok := range []string{w.Token("acme", "rep-2"), w.Token("globex", "rep-1")} {
			if st, body, _ := download(t, ts.URL, tok, id, nil); st != 404 || !strings.Contains(string(body), `"not_found"`) {
				t.Fatalf("%s for another rep or organisation: %d %s, want 404 not_found", id, st, body)
			}
		}
	}
	// Once each: three files on the note, three blobs on disk.
	var list struct {
		Attachments []struct{ ID, SHA256 string } `json:"attachments"`
	}
	if st := do(t, "GET", ts.URL+"/v1/attachments?parent_collection=customer_notes&parent_id=n-1", mgr, nil, &list); st != 200 || len(list.Attachments) != 3 {
		t.Fatalf("list: %d %+v", st, list)
	}
	blobs, _ := filepath.Glob(filepath.Join(ts.Data, "attachments", "blobs", "o-acme", "*"))
	if len(blobs) != 3 {
		t.Fatalf("blobs on disk: %v", blobs)
	}
	// The metadata syncs with the note, for the rep and their manager.
	for _, tok := range []string{rep, mgr} {
		docs, _ := pullAll(t, ts.URL, tok, "", 100)
		for id := range photos {
			if _, ok := docs["attachments/"+id]; !ok {
				t.Fatalf("pull lacks attachments/%s", id)
			}
		}
	}
	if docs, _ := pullAll(t, ts.URL, w.Token("acme", "rep-2"), "", 100); len(docs) != 0 {
		for k := range docs {
			if strings.HasPrefix(k, "attachments/") {
				t.Fatalf("rep-2 pulls %s", k)
			}
		}
	}
}

// TestAttachmentHTTP: ranges, ETags, thumbnails, refusals with their codes
// and statuses, reassignment and deletion, over HTTP, on both stores.
func TestAttachmentHTTP(t *testing.T) {
	t.Parallel()
	for _, st := range wfStores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			attachmentHTTP(t, attachmentWorld(t, st.store))
		})
	}
}

func attachmentHTTP(t *testing.T, w *accWorld) {
	ts := w.Server
	rep := w.Token("acme", "rep-1")
	b := testphoto.JPEG(7, 100<<10)
	decl := map[string]any{"id": "a-1", "parent_collection": "customer_notes", "parent_id": "n-1", "filename": "shelf.jpg",
		"content_type": "image/jpeg", "size": len(b), "sha256": sha(b), "location": map[string]any{"lat": 48.1, "lng": 11.5}}
	for _, c := range []struct {
		name   string
		change map[string]any
		status int
		code   string
	}{
		{"path-like name", map[string]any{"filename": "../../x.jpg"}, 400, "invalid_file_name"},
		{"unicode name", map[string]any{"filename": "Лавка.jpg"}, 400, "invalid_file_name"},
		{"type", map[string]any{"content_type": "text/html"}, 400, "attachment_type_not_allowed"},
		{"oversized", map[string]any{"size": 26 << 20}, 413, "attachment_too_large"},
		{"unknown field", map[string]any{"path": "/tmp/x"}, 400, "invalid_request"},
	} {
		d := map[string]any{}
		for k, v := range decl {
			d[k] = v
		}
		for k, v := range c.change {
			d[k] = v
		}
		var e errorReply
		if st := do(t, "POST", ts.URL+"/v1/attachments", rep, mustJSON(t, d), &e); st != c.status || e.Error.Code != c.code {
			t.Errorf("%s: %d %+v, want %d %s", c.name, st, e.Error, c.status, c.code)
		}
	}
	var st struct {
		Status string `json:"status"`
		Offset int64  `json:"offset"`
	}
	if code := do(t, "POST", ts.URL+"/v1/attachments", rep, mustJSON(t, decl), &st); code != 200 || st.Status != "uploading" {
		t.Fatalf("declare: %d %+v", code, st)
	}
	chunk := func(off int, body []byte) (int, []byte, http.Header) {
		req, _ := http.NewRequest("PATCH", ts.URL+"/v1/attachments/a-1/content", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+rep)
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Upload-Offset", strconv.Itoa(off))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, raw, resp.Header
	}
	if code, _, _ := chunk(0, b[:64<<10]); code != 200 {
		t.Fatalf("first chunk: %d", code)
	}
	if code, raw, h := chunk(0, b[:64<<10]); code != 409 || h.Get("Upload-Offset") != strconv.Itoa(64<<10) {
		t.Fatalf("chunk at a stale offset: %d %s, Upload-Offset %q", code, raw, h.Get("Upload-Offset"))
	}
	for off := 64 << 10; off < len(b); off += 64 << 10 {
		code, raw, _ := chunk(off, b[off:min(off+64<<10, len(b))])
		if code != 200 || off+64<<10 >= len(b) && !strings.Contains(string(raw), `"complete"`) {
			t.Fatalf("chunk at %d: %d %s", off, code, raw)
		}
	}
	code, got, h := download(t, ts.URL, rep, "a-1", map[string]string{"Range": "bytes=100-199"})
	if code != 206 || !bytes.Equal(got, b[100:200]) || h.Get("Content-Range") != fmt.Sprintf("bytes 100-199/%d", len(b)) {
		t.Fatalf("range: %d, %d bytes, Content-Range %q", code, len(got), h.Get("Content-Range"))
	}
	if code, _, _ := download(t, ts.URL, rep, "a-1", map[string]string{"Range": fmt.Sprintf("bytes=%d-", len(b))}); code != 416 {
		t.Fatalf("range past the end: %d", code)
	}
	if code, got, _ := download(t, ts.URL, rep, "a-1", map[string]string{"If-None-Match": `"` + sha(b) + `"`}); code != 304 || len(got) != 0 {
		t.Fatalf("If-None-Match: %d", code)
	}
	req, _ := http.NewRequest("GET", ts.URL+"/v1/attachments/a-1/thumbnail?w=128", nil)
	req.Header.Set("Authorization", "Bearer "+w.Token("acme", "mgr-1"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	thumb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || len(thumb) == 0 || len(thumb) >= len(b) {
		t.Fatalf("thumbnail: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(thumb))
	}
	// Reassigning the customer takes the photo from rep-1 to rep-2.
	w.Admin("acme", "POST", "/customers/c-1/assign", map[string]any{"reps": []string{"rep-2"}}, 200)
	if code, _, _ := download(t, ts.URL, rep, "a-1", nil); code != 404 {
		t.Fatalf("old rep after reassignment: %d", code)
	}
	if code, got, _ := download(t, ts.URL, w.Token("acme", "rep-2"), "a-1", nil); code != 200 || !bytes.Equal(got, b) {
		t.Fatalf("new rep after reassignment: %d", code)
	}
	// Deleting: gone for everyone, 404 attachment_deleted.
	if code := do(t, "DELETE", ts.URL+"/v1/attachments/a-1", w.Operator("acme"), nil, nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code, raw, _ := download(t, ts.URL, w.Token("acme", "rep-2"), "a-1", nil); code != 404 || !strings.Contains(string(raw), "attachment_deleted") {
		t.Fatalf("after delete: %d %s", code, raw)
	}
}

// TestAttachmentUploadSurvivesSIGKILL: the real binary is killed with
// SIGKILL in the middle of an upload. No file is visible, nothing partial
// sits among the stored files, and after a restart the upload continues
// from where the server stands (at least every acknowledged byte) to the
// exact bytes.
func TestAttachmentUploadSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	p := startBinary(t, data, "--attachment-chunk", "65536")
	admin := runBinary(t, "token", "--any-user", "--data", data, "--org", "org-1", "--user", "u-admin", "--role", "admin")
	tok := runBinary(t, "token", "--any-user", "--data", data, "--org", "org-1", "--user", "u-1", "--role", "rep")
	createCustomer(t, p.URL, admin, "c-1", "u-1")
	var r pushReply
	if st := do(t, "POST", p.URL+"/v1/sync/push", tok, mustJSON(t, push("phone", mCreate("m-1", "customer_notes", "n-1",
		map[string]any{"customer_id": "c-1", "text": "delivery damaged"}))), &r); st != 200 {
		t.Fatalf("push: %d", st)
	}
	b := testphoto.JPEG(3, 2<<20)
	decl := mustJSON(t, map[string]any{"id": "a-1", "parent_collection": "customer_notes", "parent_id": "n-1",
		"filename": "damage.jpg", "content_type": "image/jpeg", "size": len(b), "sha256": sha(b)})
	var st struct {
		Status string `json:"status"`
		Offset int64  `json:"offset"`
	}
	if code := do(t, "POST", p.URL+"/v1/attachments", tok, decl, &st); code != 200 {
		t.Fatalf("declare: %d", code)
	}
	send := func(base string, off int64) (int64, string, error) {
		end := min(off+64<<10, int64(len(b)))
		req, _ := http.NewRequest("PATCH", base+"/v1/attachments/a-1/content", bytes.NewReader(b[off:end]))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Upload-Offset", strconv.FormatInt(off, 10))
		resp, err := (&http.Client{Timeout: patience.Of(t)}).Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		var got struct {
			Status string `json:"status"`
			Offset int64  `json:"offset"`
		}
		if resp.StatusCode != 200 {
			return 0, "", fmt.Errorf("status %d", resp.StatusCode)
		}
		err = json.NewDecoder(resp.Body).Decode(&got)
		return got.Offset, got.Status, err
	}
	// Acknowledged chunks up to about 40%, then one more sent while the
	// process dies.
	var acked int64
	for acked < int64(len(b))*4/10 {
		off, _, err := send(p.URL, acked)
		if err != nil {
			t.Fatal(err)
		}
		acked = off
	}
	inflight := make(chan error, 1)
	go func() { _, _, err := send(p.URL, acked); inflight <- err }()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	<-inflight
	blobs, _ := filepath.Glob(filepath.Join(data, "attachments", "blobs", "*", "*"))
	if len(blobs) != 0 {
		t.Fatalf("files visible after the kill: %v", blobs)
	}
	p2 := startBinary(t, data, "--attachment-chunk", "65536")
	if code, _, _ := download(t, p2.URL, tok, "a-1", nil); code != 404 {
		t.Fatalf("unfinished upload downloadable: %d", code)
	}
	if code := do(t, "GET", p2.URL+"/v1/attachments/a-1", tok, nil, &st); code != 200 || st.Status != "uploading" || st.Offset < acked || st.Offset > int64(len(b)) {
		t.Fatalf("after restart: %d %+v, acknowledged %d", code, st, acked)
	}
	t.Logf("killed at %d acknowledged bytes; the server resumes at %d of %d", acked, st.Offset, len(b))
	off, status := st.Offset, st.Status
	for status != "complete" {
		var err error
		if off, status, err = send(p2.URL, off); err != nil {
			t.Fatal(err)
		}
	}
	if code, got, _ := download(t, p2.URL, tok, "a-1", nil); code != 200 || !bytes.Equal(got, b) {
		t.Fatalf("after resuming: %d, %d bytes of %d", code, len(got), len(b))
	}
}

// TestProofOfDeliveryAttachment: a matrix whose delivery step asks for a
// proof-of-delivery file refuses a typed text and a file of another
// document, and completes with a photo attached to the follow-up; the rep
// sees the photo.
func TestProofOfDeliveryAttachment(t *testing.T) {
	t.Parallel()
	w := newWFWorld(t, onSQLite)
	m := map[string]any{"policy": map[string]any{"discount_limit_pct": 5}, "activities": []any{map[string]any{
		"id": "delivery", "name": "Delivery with proof", "trigger": map[string]any{"on": "order_status", "status": "submitted"},
		"responsible": "logistics", "accountable": "manager", "informed": []string{"rep"}, "sla": "24h",
		"attachments": []string{"proof_of_delivery"}, "on_done": map[string]any{"from": []string{"submitted"}, "to": "delivered"}}}}
	w.Admin("acme", "PUT", "/matrix", m, 200)
	w.pushAs("rep-1", mCreate("m-o", "orders", "o-1", withStatus(orderLines(0), "submitted")))
	fu := "fu-o-1-delivery"
	lg := w.as("lg-1")
	if st, reply := w.act(lg, fu, "complete", map[string]any{"result": map[string]any{"proof_of_delivery": "signed by Mr. Maier"}}); st != 400 {
		t.Fatalf("typed proof: %d %v", st, reply)
	} else if code, ptr := errCode(reply); code != "attachment_required" || ptr != "/result/proof_of_delivery" {
		t.Fatalf("typed proof: %v", reply)
	}
	// A file of another document does not prove this delivery.
	w.pushAs("rep-1", mCreate("m-n", "customer_notes", "n-1", map[string]any{"customer_id": "c-1", "text": "dock photo"}))
	b := testphoto.JPEG(5, 40<<10)
	uploadVia(t, w.Server.URL, w.as("rep-1"), map[string]any{"id": "att-note", "parent_collection": "customer_notes", "parent_id": "n-1",
		"filename": "dock.jpg", "content_type": "image/jpeg"}, b)
	if st, reply := w.act(lg, fu, "complete", map[string]any{"result": map[string]any{"proof_of_delivery": "att-note"}}); st != 400 {
		t.Fatalf("another document's file: %d %v", st, reply)
	}
	pod := testphoto.JPEG(6, 40<<10)
	uploadVia(t, w.Server.URL, lg, map[string]any{"id": "att-pod", "parent_collection": "follow_ups", "parent_id": fu,
		"filename": "pod.jpg", "content_type": "image/jpeg", "caption": "signed delivery note"}, pod)
	w.mustAct(lg, fu, "complete", map[string]any{"result": map[string]any{"proof_of_delivery": "att-pod"}})
	if o, _ := w.get("orders", "o-1"); o["status"] != "delivered" {
		t.Fatalf("order after the proof: %v", o["status"])
	}
	if code, got, _ := download(t, w.Server.URL, w.as("rep-1"), "att-pod", nil); code != 200 || !bytes.Equal(got, pod) {
		t.Fatalf("the rep reads the proof of delivery: %d", code)
	}
	if code, _, _ := download(t, w.Server.URL, w.as("bl-1"), "att-pod", nil); code != 404 {
		t.Fatalf("billing, not on the follow-up, reads the proof: %d", code)
	}
}

// TestAttachmentsOnS3: serve with --attachments-s3-* against an
// S3-compatible server (gofakes3 in the test process): a file goes into the
// bucket under the prefix, nothing into the data directory, and downloads
// byte for byte with ranges. Not parallel: the AWS SDK reads credentials
// from the environment.
func TestAttachmentsOnS3(t *testing.T) {
	backend := s3mem.New()
	s3srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(s3srv.Close)
	if err := backend.CreateBucket("photos"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "eu-central-1")
	ts := startServer(t, "", func(c *serveConfig) {
		c.Attachments.S3Bucket, c.Attachments.S3Endpoint, c.Attachments.S3Prefix = "photos", s3srv.URL, "fs/"
	})
	ts.Customer(t, "acme", "c-1", "rep-1")
	rep := ts.Token(t, "acme", "rep-1")
	if st := do(t, "POST", ts.URL+"/v1/sync/push", rep, mustJSON(t, push("phone", mCreate("m-1", "customer_notes", "n-1",
		map[string]any{"customer_id": "c-1", "text": "dock"}))), nil); st != 200 {
		t.Fatalf("push: %d", st)
	}
	b := testphoto.JPEG(31, 1500<<10)
	uploadVia(t, ts.URL, rep, map[string]any{"id": "a-s3", "parent_collection": "customer_notes", "parent_id": "n-1",
		"filename": "dock.jpg", "content_type": "image/jpeg"}, b)
	obj, err := backend.HeadObject("photos", "fs/o-acme/"+sha(b))
	if err != nil || obj.Size != int64(len(b)) {
		t.Fatalf("object in the bucket: %+v %v", obj, err)
	}
	if local, _ := filepath.Glob(filepath.Join(ts.Data, "attachments", "blobs", "*", "*")); len(local) != 0 {
		t.Fatalf("files in the data directory: %v", local)
	}
	if code, got, _ := download(t, ts.URL, rep, "a-s3", nil); code != 200 || !bytes.Equal(got, b) {
		t.Fatalf("download: %d, %d bytes", code, len(got))
	}
	if code, got, _ := download(t, ts.URL, rep, "a-s3", map[string]string{"Range": "bytes=-100"}); code != 206 || !bytes.Equal(got, b[len(b)-100:]) {
		t.Fatalf("range: %d, %d bytes", code, len(got))
	}
}

// TestClientFileWaitsForItsDocument: a photo attached to a note the phone
// has not pushed yet waits in the queue; after the push it uploads.
func TestClientFileWaitsForItsDocument(t *testing.T) {
	t.Parallel()
	w := attachmentWorld(t, onSQLite)
	phone, err := client.New(client.Config{BaseURL: w.Server.URL, Token: client.StaticToken(w.Token("acme", "rep-1")), DeviceID: "phone-2"})
	if err != nil {
		t.Fatal(err)
	}
	if err := phone.Create("customer_notes", "n-2", map[string]any{"customer_id": "c-1", "text": "written offline"}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "offline.jpg")
	b := testphoto.JPEG(41, 30<<10)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	id, err := phone.Attach(client.FileSpec{ParentCollection: "customer_notes", ParentID: "n-2", Path: path, ContentType: "image/jpeg"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := phone.UploadFiles(t.Context())
	if err != nil || len(rep.Waiting) != 1 || len(rep.Uploaded) != 0 || len(phone.PendingFiles()) != 1 {
		t.Fatalf("before the push: %+v %v", rep, err)
	}
	if _, err := phone.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	rep, err = phone.UploadFiles(t.Context())
	if err != nil || len(rep.Uploaded) != 1 || rep.Uploaded[0] != id || len(phone.PendingFiles()) != 0 {
		t.Fatalf("after the push: %+v %v", rep, err)
	}
	if code, got, _ := download(t, w.Server.URL, w.Token("acme", "mgr-1"), id, nil); code != 200 || !bytes.Equal(got, b) {
		t.Fatalf("the manager reads the photo: %d", code)
	}
}
