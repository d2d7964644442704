package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/ferrettest"
	"github.com/fieldsync/fieldsync/internal/patience"
)

// TestDurabilityAfterSIGKILL pushes from several devices at once, kills the
// real binary with SIGKILL the moment enough pushes were acknowledged, starts
// it again on the same data directory and finds every acknowledged mutation,
// each exactly once; a checkpoint taken before the kill still works.
func TestDurabilityAfterSIGKILL(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	tok := runBinary(t, "token", "--any-user", "--data", data, "--org", "org-1", "--user", "u-1", "--role", "rep")
	p := startBinary(t, data)
	createCustomer(t, p.URL, runBinary(t, "token", "--any-user", "--data", data, "--org", "org-1", "--user", "u-admin", "--role", "admin"), "c-1", "u-1")

	// A checkpoint from before any push, to be used after the restart.
	_, cp0 := pullAll(t, p.URL, tok, "", 1000)

	const devices, batch = 4, 50
	var mu sync.Mutex
	acked := map[string]int64{} // note id -> version acknowledged
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: patience.Of(t)}
	for d := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; ; b++ {
				select {
				case <-stop:
					return
				default:
				}
				var muts []map[string]any
				for i := range batch {
					muts = append(muts, note(fmt.Sprintf("d%d-b%d-%d", d, b, i), "durable note"))
				}
				body, _ := json.Marshal(push(fmt.Sprintf("dev-%d", d), muts...))
				req, _ := http.NewRequest("POST", p.URL+"/v1/sync/push", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(req)
				if err != nil {
					return // the server was killed under us: this batch was never acknowledged
				}
				var r pushReply
				err = json.NewDecoder(resp.Body).Decode(&r)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					return
				}
				mu.Lock()
				for i, o := range r.Results {
					if o.Status == "applied" {
						acked[muts[i]["id"].(string)] = o.Version
					}
				}
				n := len(acked)
				mu.Unlock()
				if n >= 2000 {
					select {
					case <-stop:
					default:
						close(stop)
					}
					return
				}
			}
		}()
	}
	<-stop
	// Kill right after the acknowledgement that crossed the mark, while the
	// other devices may still be mid-push.
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	wg.Wait()

	p2 := startBinary(t, data)
	got, _ := pullAll(t, p2.URL, tok, cp0, 1000)
	mu.Lock()
	defer mu.Unlock()
	lost := 0
	for id := range acked {
		if _, ok := got["customer_notes/"+id]; !ok {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged notes were lost after SIGKILL", lost, len(acked))
	}
	t.Logf("%d acknowledged notes survived SIGKILL; %d stored in all", len(acked), len(got))
}

// TestGracefulShutdown checks SIGTERM drains and exits cleanly.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	p := startBinary(t, t.TempDir())
	resp, err := http.Get(p.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(patience.Of(t)):
		t.Fatal("fieldsync did not exit after SIGTERM")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM\n%s", code, p.log())
	}
	if !strings.Contains(p.log(), `"msg":"stopped"`) {
		t.Fatalf("no clean stop in the log:\n%s", p.log())
	}
}

// TestMongoDBBinaryRoundTrip runs the real binary with --mongodb-uri on a
// FerretDB started in this process: a push and a pull through HTTP, then a
// restart that finds the data and accepts the old checkpoint.
func TestMongoDBBinaryRoundTrip(t *testing.T) {
	t.Parallel()
	uri, stop, err := ferrettest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	data := t.TempDir()
	tok := runBinary(t, "token", "--any-user", "--data", data, "--org", "org-1", "--user", "u-1")
	p := startBinary(t, data, "--mongodb-uri", uri, "--mongodb-database", "roundtrip")
	createCustomer(t, p.URL, runBinary(t, "token", "--any-user", "--data", data, "--org", "org-1", "--user", "u-admin", "--role", "admin"), "c-1", "u-1")
	var pr pushReply
	if st := do(t, "POST", p.URL+"/v1/sync/push", tok, mustJSON(t, push("dev-1", note("m-1", "on mongo"), note("m-2", "also"))), &pr); st != 200 ||
		len(pr.Results) != 2 || pr.Results[0].Status != "applied" || pr.Results[1].Status != "applied" {
		t.Fatalf("push: %d %+v", st, pr)
	}
	docs, cp := pullAll(t, p.URL, tok, "", 100)
	if len(docs) != 3 {
		t.Fatalf("pulled %d documents, want the customer and 2 notes", len(docs))
	}
	if strings.Contains(p.log(), uri) {
		t.Errorf("the MongoDB URI reached the log")
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.done

	p2 := startBinary(t, data, "--mongodb-uri", uri, "--mongodb-database", "roundtrip")
	if st := do(t, "POST", p2.URL+"/v1/sync/push", tok, mustJSON(t, push("dev-1", note("m-3", "after restart"))), &pr); st != 200 || pr.Results[0].Status != "applied" {
		t.Fatalf("push after restart: %d %+v", st, pr)
	}
	more, _ := pullAll(t, p2.URL, tok, cp, 100)
	if len(more) != 1 || more["customer_notes/m-3"] == nil {
		t.Fatalf("pull from the old checkpoint after restart: %v", more)
	}
}
