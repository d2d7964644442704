package main

import (
	"fmt"
	"github.com/fieldsync/fieldsync/internal/apptest"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestBackupWhileDevicesPush backs the store up while three devices keep
// pushing, restores the backup into a new data directory, serves it and
// finds every push acknowledged before the backup began; the restored keys
// still verify the devices' tokens. Restore refuses a data directory in use
// by a server, and one holding a store unless --force.
func TestBackupWhileDevicesPush(t *testing.T) {
	t.Parallel()
	ts := apptest.Start(t, "", nil)
	apptest.CreateCustomer(t, ts.URL, ts.Token(t, "acme", "boss", "admin"), "c-1", "rep-1")
	tok := ts.Token(t, "acme", "rep-1")

	var mu sync.Mutex
	acked := map[string]bool{}
	cond := sync.NewCond(&mu)
	alive := 3 // pushers still running: a failed one must not leave waitFor waiting
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for d := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { mu.Lock(); alive--; cond.Broadcast(); mu.Unlock() }()
			for b := 0; ; b++ {
				select {
				case <-stop:
					return
				default:
				}
				var muts []map[string]any
				for i := range 20 {
					muts = append(muts, apptest.Note(fmt.Sprintf("d%d-b%d-%d", d, b, i), "kept"))
				}
				var r apptest.PushReply
				if st := apptest.Do(t, "POST", ts.URL+"/v1/sync/push", tok, apptest.MustJSON(t, apptest.Push(fmt.Sprint("dev-", d), muts...)), &r); st != 200 {
					t.Errorf("push: %d", st)
					return
				}
				mu.Lock()
				for i, o := range r.Results {
					if o.Status == "applied" {
						acked[muts[i]["id"].(string)] = true
					}
				}
				cond.Broadcast()
				mu.Unlock()
			}
		}()
	}
	waitFor := func(n int) map[string]bool {
		mu.Lock()
		defer mu.Unlock()
		for len(acked) < n && alive > 0 {
			cond.Wait()
		}
		if len(acked) < n {
			t.Fatalf("the devices stopped pushing after %d notes", len(acked))
		}
		return maps.Clone(acked)
	}
	before := waitFor(200)
	dir := filepath.Join(t.TempDir(), "backup")
	if code, out, errs := cli(t, "", "backup", "--data", ts.Data, "--to", dir); code != 0 || !strings.Contains(out, "backed up") {
		t.Fatalf("backup: %d %s%s", code, out, errs)
	}
	waitFor(len(before) + 100) // devices kept pushing through the backup
	close(stop)
	wg.Wait()

	if code, _, errs := cli(t, "", "restore", "--from", dir, "--data", ts.Data, "--force"); code != 1 || !strings.Contains(errs, "in use") {
		t.Errorf("restore into a running server's directory: %d %s", code, errs)
	}
	restored := t.TempDir()
	if code, out, errs := cli(t, "", "restore", "--from", dir, "--data", restored); code != 0 {
		t.Fatalf("restore: %d %s%s", code, out, errs)
	}
	if code, _, errs := cli(t, "", "restore", "--from", dir, "--data", restored); code != 1 || !strings.Contains(errs, "--force") {
		t.Errorf("restore over a store without --force: %d %s", code, errs)
	}
	ts2 := apptest.Start(t, restored, nil)
	got, _ := apptest.PullAll(t, ts2.URL, tok, "", 1000)
	lost := 0
	for id := range before {
		if _, ok := got["customer_notes/"+id]; !ok {
			lost++
		}
	}
	if lost > 0 || len(before) == 0 {
		t.Fatalf("%d of %d notes acknowledged before the backup are missing from the restore", lost, len(before))
	}
	t.Logf("%d notes acknowledged before the backup, %d in the restore", len(before), len(got)-1)
}
