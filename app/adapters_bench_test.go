package app_test

// A first sync of 10,000 documents through each protocol, in one run:
// native pull, WatermelonDB's synchronize() and RxDB's replicateServer, both
// real libraries under Node. It reports wall time and the server's CPU time
// (this test process; the Node devices are other processes). Run with
//
//	FIELDSYNC_ADAPTER_BENCH=1 go test ./app -run TestAdapterFirstSync10k -v -timeout 30m
//
// docs/benchmarks.md keeps the figures.

import (
	"encoding/json"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
)

// processCPU is the CPU this process (the server) has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestAdapterFirstSync10k(t *testing.T) {
	if os.Getenv("FIELDSYNC_ADAPTER_BENCH") == "" {
		t.Skip("a measurement, not a test: set FIELDSYNC_ADAPTER_BENCH=1 (docs/benchmarks.md)")
	}
	needNode(t)
	const n = 10000
	w := newAccWorld(t, func(testing.TB) func(*serveConfig) { return quiet })
	admin := w.Operator("acme")
	ensureReps(t, w.Server.URL, admin, "rep-1")
	for lo := 0; lo < n; lo += 500 {
		var docs []map[string]any
		for i := lo; i < lo+500; i++ {
			docs = append(docs, map[string]any{"id": fmt.Sprintf("c-%05d", i), "fields": map[string]any{
				"name": fmt.Sprintf("Customer %d", i), "segment": "OEM", "assigned_reps": []string{"rep-1"},
				"address": map[string]any{"line1": "Hauptstr. 1", "city": "Berlin", "postcode": "10115", "country": "DE"}}})
		}
		var r struct {
			Results []struct {
				Status string `json:"status"`
			} `json:"results"`
		}
		json.Unmarshal(w.Admin("acme", "POST", "/documents/customers", map[string]any{"docs": docs}, 200), &r)
		if len(r.Results) != 500 || r.Results[0].Status != "applied" {
			t.Fatalf("import: %+v", r.Results[:min(len(r.Results), 3)])
		}
	}
	tok := w.Token("acme", "rep-1", "rep")
	native := func() int {
		got, cp := 0, ""
		for {
			var r pullReply
			st := do(t, "GET", w.Server.URL+"/v1/sync/pull?limit=100&checkpoint="+cp, tok, nil, &r)
			if st != 200 {
				t.Fatalf("pull %d", st)
			}
			got += len(r.Changes)
			cp = r.Checkpoint
			if !r.HasMore {
				return got
			}
		}
	}
	run := func(name string, sync func() int) {
		cpu0, t0 := processCPU(), time.Now()
		got := sync()
		wall, cpu := time.Since(t0), processCPU()-cpu0
		if got < n {
			t.Fatalf("%s: %d documents, want %d", name, got, n)
		}
		t.Logf("%-13s %6d docs  wall %7.2fs  server cpu %7.2fs", name, got, wall.Seconds(), cpu.Seconds())
	}
	wm := func() int {
		d := &wmDevice{startJSDevice(t, "wm", "watermelondb/device.js", w.Server.URL, tok, "wm"), "rep-1"}
		d.must(map[string]any{"cmd": "dump"}, nil) // the database is open: time the sync only
		cpu0, t0 := processCPU(), time.Now()
		d.sync(t)
		wall, cpu := time.Since(t0), processCPU()-cpu0
		got, _ := d.dump()
		t.Logf("%-13s %6d docs  wall %7.2fs  server cpu %7.2fs", "watermelondb", len(got), wall.Seconds(), cpu.Seconds())
		return len(got)
	}
	rx := func() int {
		d := &rxDevice{jsDevice: startJSDevice(t, "rx", "rxdb/device.js", w.Server.URL, tok, "rx")}
		cpu0, t0 := processCPU(), time.Now()
		d.sync()
		wall, cpu := time.Since(t0), processCPU()-cpu0
		got := 0
		for _, docs := range d.dump().Collections {
			got += len(docs)
		}
		t.Logf("%-13s %6d docs  wall %7.2fs  server cpu %7.2fs (includes the replications' start)", "rxdb", got, wall.Seconds(), cpu.Seconds())
		return got
	}
	for round := 0; round < 2; round++ {
		run("native", native)
		if wm() < n || rx() < n {
			t.Fatal("a library did not receive every document")
		}
	}
}
