package app_test

// Benchmarks of the sync path through real HTTP on the SQLite store (the
// MongoDB store's are in bench_mongo_test.go). The floor they compare with,
// raw SQLite writing and reading the same notes, is bench/'s
// BenchmarkRawSQLite: run both in one command for figures of one run.
// Figures and the command that produced them are in docs/benchmarks.md:
//
//	go test ./app ./bench -run '^$' -bench '^BenchmarkPush|^BenchmarkPull|RawSQLite' -benchtime 3x

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const benchDocs = 10_000

// noteBody is a ~300-byte customer note, the size the targets are set for.
func noteBody(i int) map[string]any {
	return map[string]any{
		"customer_id": fmt.Sprintf("c-%05d", i%500),
		"text": fmt.Sprintf("Visit %d: the plant manager wants 40 IE3 motors (15 kW) and 200 m of 4-core cable by March; "+
			"asked for a quote with the framework discount and a delivery slot before the shutdown week.", i),
		"created_at": "2026-11-29T09:12:00Z",
	}
}

// benchCustomers is how many customers the notes of noteBody hang off.
const benchCustomers = 500

// seedBenchCustomers creates the customers of noteBody, assigned to user,
// through base with an admin's token: a rep sees a note through its
// customer.
func seedBenchCustomers(b *testing.B, base, admin, user string) {
	ensureReps(b, base, admin, user) // assigned_reps names active reps only
	muts := make([]map[string]any, benchCustomers)
	for i := range muts {
		id := fmt.Sprintf("c-%05d", i)
		muts[i] = map[string]any{"mutation_id": "m-" + id, "collection": "customers", "id": id, "op": "create",
			"doc": map[string]any{"name": "Customer " + id, "assigned_reps": []string{user}}}
	}
	benchPush(b, &http.Client{}, base, admin, mustJSON(b, push("bench-admin", muts...)))
}

func benchBodies(b *testing.B, prefix string, n, batch int) [][]byte {
	var out [][]byte
	for start := 0; start < n; start += batch {
		muts := make([]map[string]any, 0, batch)
		for i := start; i < start+batch && i < n; i++ {
			id := fmt.Sprintf("%s-%06d", prefix, i)
			muts = append(muts, map[string]any{"mutation_id": "m-" + id, "collection": "customer_notes", "id": id, "op": "create", "doc": noteBody(i)})
		}
		out = append(out, mustJSON(b, push("bench-dev", muts...)))
	}
	return out
}

// BenchmarkPush pushes 10,000 notes in batches of 100 per iteration.
func BenchmarkPush(b *testing.B) {
	ts := startServer(b, "", quiet)
	tok := ts.Token(b, "org-1", "u-1")
	seedBenchCustomers(b, ts.URL, ts.Token(b, "org-1", "u-admin", "admin"), "u-1")
	c := &http.Client{}
	n := 0
	var cpu time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		bodies := benchBodies(b, "p"+strconv.Itoa(i), benchDocs, 100)
		b.StartTimer()
		c0 := cpuTime(b)
		for _, body := range bodies {
			benchPush(b, c, ts.URL, tok, body)
		}
		cpu += cpuTime(b) - c0
		n += benchDocs
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "mutations/s")
	// The whole process: client, server and SQLite, which runs in it.
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "µs-cpu/mutation")
}

// BenchmarkPushConcurrent pushes 10,000 notes per iteration from 8
// devices at once (1,250 each, batches of 100): what many reps syncing
// together look like to the single SQLite writer.
func BenchmarkPushConcurrent(b *testing.B) {
	ts := startServer(b, "", quiet)
	tok := ts.Token(b, "org-1", "u-1")
	seedBenchCustomers(b, ts.URL, ts.Token(b, "org-1", "u-admin", "admin"), "u-1")
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	const devices = 8
	n := 0
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		var bodies [devices][][]byte
		for d := range devices {
			bodies[d] = benchBodies(b, fmt.Sprintf("c%d-%d", i, d), benchDocs/devices, 100)
		}
		b.StartTimer()
		var wg sync.WaitGroup
		for d := range devices {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, body := range bodies[d] {
					if err := tryPush(c, ts.URL, tok, body); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		n += benchDocs
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "mutations/s")
}

// BenchmarkPull pulls the owner's 10,000 notes from an empty checkpoint.
func BenchmarkPull(b *testing.B) {
	ts := startServer(b, "", quiet)
	tok := ts.Token(b, "org-1", "u-1")
	seedBenchCustomers(b, ts.URL, ts.Token(b, "org-1", "u-admin", "admin"), "u-1")
	c := &http.Client{}
	for _, body := range benchBodies(b, "seed", benchDocs, 100) {
		benchPush(b, c, ts.URL, tok, body)
	}
	for _, tc := range []struct {
		page int
		gzip bool
	}{{100, true}, {1000, true}, {100, false}, {1000, false}} {
		enc := "gzip"
		if !tc.gzip {
			enc = "identity"
		}
		b.Run(fmt.Sprintf("page=%d/%s", tc.page, enc), func(b *testing.B) {
			hc := &http.Client{Transport: &http.Transport{DisableCompression: !tc.gzip}}
			n := 0
			var cpu time.Duration
			for b.Loop() {
				c0 := cpuTime(b)
				n += benchPullAll(b, hc, ts.URL, tok, tc.page)
				cpu += cpuTime(b) - c0
			}
			if n%(benchDocs+benchCustomers) != 0 {
				b.Fatalf("pulled %d documents, want a multiple of %d", n, benchDocs+benchCustomers)
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "docs/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(n), "µs-cpu/doc")
		})
	}
}

// benchPullAll pulls everything as a client would, decoding every page.
func benchPullAll(b *testing.B, c *http.Client, url, tok string, page int) int {
	cp, n := "", 0
	for {
		req, _ := http.NewRequest("GET", url+"/v1/sync/pull?limit="+strconv.Itoa(page)+"&checkpoint="+cp, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var r pullReply
		err = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("pull: %d %v", resp.StatusCode, err)
		}
		n += len(r.Changes)
		cp = r.Checkpoint
		if !r.HasMore {
			return n
		}
	}
}

// BenchmarkPullMemory measures the real binary's peak resident memory while
// one device makes a first pull of N documents in pages of 1,000. The peak
// is reset (clear_refs 5) after seeding, so it covers the pull alone.
func BenchmarkPullMemory(b *testing.B) {
	for _, n := range []int{10_000, 50_000} {
		b.Run("docs="+strconv.Itoa(n), func(b *testing.B) {
			data := b.TempDir()
			p := startBinary(b, data)
			tok := runBinary(b, "token", "--any-user", "--data", data, "--org", "org-1", "--user", "u-1")
			seedBenchCustomers(b, p.URL, runBinary(b, "token", "--any-user", "--data", data, "--org", "org-1", "--user", "u-admin", "--role", "admin"), "u-1")
			c := &http.Client{}
			for _, body := range benchBodies(b, "m", n, 500) {
				benchPush(b, c, p.URL, tok, body)
			}
			pid := p.cmd.Process.Pid
			idle := procStatusKB(b, pid, "VmRSS")
			var peak int
			for b.Loop() {
				if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
					b.Fatalf("reset peak RSS: %v", err)
				}
				if got := benchPullAll(b, c, p.URL, tok, 1000); got != n+benchCustomers {
					b.Fatalf("pulled %d, want %d", got, n+benchCustomers)
				}
				peak = max(peak, procStatusKB(b, pid, "VmHWM"))
			}
			b.ReportMetric(float64(idle)/1024, "idle-RSS-MB")
			b.ReportMetric(float64(peak)/1024, "peak-RSS-MB")
		})
	}
}

func procStatusKB(b *testing.B, pid int, field string) int {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				b.Fatal(err)
			}
			return kb
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
