// Package bench measures the real fieldsync binary as an operator runs it:
// the server is a child process, so its CPU time and memory are its own,
// read from /proc, apart from the client's. docs/benchmarks.md has the
// figures and the commands; nothing here asserts a figure.
//
// Each iteration is one whole experiment (10,000 notes pushed, a first pull
// of 50,000, an idle reading, raw SQLite writing and reading as many rows),
// so `-benchtime 1x -count 3` gives three figures of each:
//
//	go test ./bench ./workflow -run '^$' -bench 'Server|Raw|Submit' -benchtime 1x -count 3
package bench_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// binDir holds the binary of this run; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary builds ./cmd/fieldsync once per run, or is BENCH_BINARY: a
// binary built from another commit, to compare two versions alternately on
// the same machine in the same hour.
var binary = sync.OnceValues(func() (string, error) {
	if bin := os.Getenv("BENCH_BINARY"); bin != "" {
		return bin, nil
	}
	dir, err := os.MkdirTemp("", "fieldsync-bench-")
	if err != nil {
		return "", err
	}
	binDir = dir
	bin := filepath.Join(dir, "fieldsync")
	if out, err := exec.Command("go", "build", "-o", bin+".build", "../cmd/fieldsync").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	// Run a copy, as a deployment runs an installed file: the linker's
	// output sits in the page cache as large folios that Linux 6.x maps
	// as 2 MB pages, which adds ~15 MB of resident code to every reading
	// (docs/benchmarks.md, "Resident memory").
	return bin, copyFile(bin+".build", bin)
})

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// server is the binary serving a data directory of its own.
type server struct {
	cmd  *exec.Cmd
	url  string
	data string
	done chan struct{}
}

func start(b *testing.B) *server { return startOn(b, b.TempDir()) }

// startOn starts the binary on the data directory data.
func startOn(b *testing.B, data string) *server {
	b.Helper()
	bin, err := binary()
	if err != nil {
		b.Fatal(err)
	}
	s := &server{data: data, done: make(chan struct{})}
	s.cmd = exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data", s.data, "--log-format", "json",
		"--rate-limit", "0") // a first pull of 50,000 in pages of 100 is 500 requests at once
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "listening" {
				addr <- rec.Addr
			}
		}
		s.cmd.Wait()
		close(s.done)
	}()
	b.Cleanup(s.stop)
	select {
	case a := <-addr:
		s.url = "http://" + a
	case <-s.done:
		b.Fatal("fieldsync exited before listening")
	case <-time.After(time.Minute):
		b.Fatal("fieldsync did not start listening")
	}
	return s
}

// stop kills the server and waits for it to exit; again is a no-op.
func (s *server) stop() {
	s.cmd.Process.Kill()
	<-s.done
}

// user adds a user of the organisation "bench" and returns an access token
// for them, through the running server as an operator would.
func (s *server) user(b *testing.B, id, role string) string {
	b.Helper()
	bin, _ := binary()
	if out, err := exec.Command(bin, "user", "add", "--data", s.data, "--server", s.url, "--org", "bench", "--id", id,
		"--email", id+"@bench.example", "--role", role, "--no-password").CombinedOutput(); err != nil {
		b.Fatalf("user add: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "token", "--data", s.data, "--server", s.url, "--org", "bench", "--user", id,
		"--role", role).Output()
	if err != nil {
		b.Fatalf("token: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// cpu is the server's CPU time so far (user and system).
func (s *server) cpu(b *testing.B) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name (which may hold spaces): state is 3,
	// utime 14, stime 15, in clock ticks of 1/100 s on Linux.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// mem is a reading of the server's memory, in bytes.
type mem struct {
	rss  int64 // resident set: VmRSS
	peak int64 // its peak since the last resetPeak: VmHWM
	// anon is the resident set less the pages of files (RssAnon): the
	// process's own memory. The rest is mostly the binary's code and
	// data, clean page cache the kernel can drop and shares with every
	// other process running the binary.
	anon int64
}

// memory reads the server's memory.
func (s *server) memory(b *testing.B) mem {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	var m mem
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, _ := strings.Cut(line, ":")
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			m.rss = n << 10
		case "VmHWM":
			m.peak = n << 10
		case "RssAnon":
			m.anon = n << 10
		}
	}
	return m
}

// peakAnon samples the server's RssAnon every 2 ms until stop is called,
// which returns the highest reading (the kernel keeps no peak of it).
func (s *server) peakAnon(b *testing.B) (stop func() int64) {
	done, out := make(chan struct{}), make(chan int64)
	go func() {
		var top int64
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			top = max(top, s.memory(b).anon)
			select {
			case <-tick.C:
			case <-done:
				out <- top
				return
			}
		}
	}()
	return func() int64 { close(done); return <-out }
}

// resetPeak starts the peak resident set over (Linux: clear_refs 5).
func (s *server) resetPeak(b *testing.B) {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.cmd.Process.Pid), []byte("5"), 0); err != nil {
		b.Skipf("cannot reset the peak resident set (%v): the peak figures need Linux and the right to write clear_refs", err)
	}
}

// profile records the server's CPU with perf (software clock, call graphs)
// until the benchmark ends, when BENCH_PERF names a folder for the data:
// the server is another process, so -cpuprofile cannot see it.
//
//	BENCH_PERF=/tmp/prof go test ./bench -run '^$' -bench ServerPush/devices=1 -benchtime 1x
//	perf report -i /tmp/prof/push-1.data --no-children --sort symbol
func (s *server) profile(b *testing.B, name string) {
	dir := os.Getenv("BENCH_PERF")
	if dir == "" {
		return
	}
	perf := exec.Command("perf", "record", "-q", "-e", "cpu-clock", "-F", "2000", "-g", "-p", strconv.Itoa(s.cmd.Process.Pid),
		"-o", filepath.Join(dir, name+".data"))
	if err := perf.Start(); err != nil {
		b.Fatalf("perf: %v", err)
	}
	b.Cleanup(func() {
		perf.Process.Signal(os.Interrupt)
		perf.Wait()
	})
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 5 * time.Minute}

func post(b *testing.B, url, token string, body []byte) {
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || bytes.Contains(raw, []byte(`"rejected"`)) {
		b.Fatalf("push: %d %s", resp.StatusCode, raw[:min(len(raw), 400)])
	}
}

// pushBody is a push of n notes with ids from start, spread over customers.
func pushBody(device string, start, n, customers int) []byte {
	var muts []map[string]any
	for k := start; k < start+n; k++ {
		id := fmt.Sprintf("n-%s-%07d", device, k)
		muts = append(muts, map[string]any{"mutation_id": "m-" + id, "collection": "customer_notes", "id": id, "op": "create",
			"doc": map[string]any{"customer_id": fmt.Sprintf("c-%03d", k%customers), "created_at": "2026-11-29T09:12:00Z",
				"text": fmt.Sprintf("Visit %d: the plant manager wants 40 IE3 motors (15 kW) and 200 m of 4-core cable by March; asked for a quote with the framework discount and a delivery slot before the shutdown week.", k)}})
	}
	raw, _ := json.Marshal(map[string]any{"device_id": device, "mutations": muts})
	return raw
}

// seedRep adds a rep with n customers and returns the rep's token.
func seedRep(b *testing.B, s *server, rep string, n int) string {
	admin := s.user(b, "admin", "admin")
	tok := s.user(b, rep, "rep")
	for start := 0; start < n; start += 100 {
		var muts []map[string]any
		for c := start; c < min(start+100, n); c++ {
			id := fmt.Sprintf("c-%03d", c)
			muts = append(muts, map[string]any{"mutation_id": "m-" + id, "collection": "customers", "id": id, "op": "create",
				"doc": map[string]any{"name": "Customer " + id, "assigned_reps": []string{rep}}})
		}
		raw, _ := json.Marshal(map[string]any{"device_id": "admin-console", "mutations": muts})
		post(b, s.url+"/v1/sync/push", admin, raw)
	}
	return tok
}

// pushNotes is how many notes one iteration of BenchmarkServerPush sends.
const pushNotes = 10_000

// BenchmarkServerPush: 10,000 new ~300-byte notes in batches of 100 from one
// device, and from 8 at once, over HTTP to the binary on its embedded store
// (synchronous=FULL). Reports the server's CPU per note and notes/s.
func BenchmarkServerPush(b *testing.B) {
	for _, devices := range []int{1, 8} {
		b.Run(fmt.Sprintf("devices=%d", devices), func(b *testing.B) {
			s := start(b)
			tok := seedRep(b, s, "rep-1", 100)
			// Encoded before the clock starts, so the client's JSON does not
			// take the server's cores; each device pushes its batches in turn.
			batches := b.N * pushNotes / 100
			bodies := make([][][]byte, devices)
			for i := range batches {
				bodies[i%devices] = append(bodies[i%devices], pushBody(fmt.Sprintf("dev-%d", i%devices), i*100, 100, 100))
			}
			cpu0 := s.cpu(b)
			s.profile(b, fmt.Sprintf("push-%d", devices))
			b.ResetTimer()
			var wg sync.WaitGroup
			for _, mine := range bodies {
				wg.Go(func() {
					for _, body := range mine {
						post(b, s.url+"/v1/sync/push", tok, body)
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			notes := float64(batches * 100)
			b.ReportMetric(float64((s.cpu(b)-cpu0).Microseconds())/notes, "server-µs/note")
			b.ReportMetric(notes/b.Elapsed().Seconds(), "notes/s")
		})
	}
}

// BenchmarkServerFirstPull: a rep's first pull of 50,000 notes in pages of
// 100 (gzip), from the binary. Reports docs/s, the server's CPU per
// document and its peak resident set during the pull.
func BenchmarkServerFirstPull(b *testing.B) {
	s := start(b)
	tok := seedRep(b, s, "rep-1", 100)
	for i := 0; i < pullDocs; i += 500 {
		post(b, s.url+"/v1/sync/push", tok, pushBody("seed", i, 500, 100))
	}
	// A server started on the data, as one is when a phone first syncs:
	// the seeding's garbage is not the pull's.
	s.stop()
	s = startOn(b, s.data)
	before := s.memory(b)
	s.resetPeak(b)
	stopAnon := s.peakAnon(b)
	cpu0 := s.cpu(b)
	s.profile(b, "pull")
	b.ResetTimer()
	got := 0
	for b.Loop() {
		cp := ""
		for {
			req, _ := http.NewRequest("GET", s.url+"/v1/sync/pull?limit=100&checkpoint="+cp, nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			var page struct {
				Changes    []json.RawMessage `json:"changes"`
				Checkpoint string            `json:"checkpoint"`
				HasMore    bool              `json:"has_more"`
			}
			err = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("pull: %d %v", resp.StatusCode, err)
			}
			got += len(page.Changes)
			cp = page.Checkpoint
			if !page.HasMore {
				break
			}
		}
	}
	b.StopTimer()
	if want := b.N * (pullDocs + 100); got != want {
		b.Fatalf("pulled %d documents, want %d", got, want)
	}
	peak, peakAnon := s.memory(b).peak, stopAnon()
	b.ReportMetric(float64(got)/b.Elapsed().Seconds(), "docs/s")
	b.ReportMetric(float64((s.cpu(b)-cpu0).Microseconds())/float64(got), "server-µs/doc")
	b.ReportMetric(float64(before.rss)/(1<<20), "rss-before-MB")
	b.ReportMetric(float64(peak)/(1<<20), "peak-rss-MB")
	b.ReportMetric(float64(before.anon)/(1<<20), "anon-before-MB")
	b.ReportMetric(float64(peakAnon)/(1<<20), "peak-anon-MB")
}

// BenchmarkServerIdle: the resident set of the binary on a fresh data
// directory once it has served its first request and settled (two readings
// a second apart within 1%).
func BenchmarkServerIdle(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		s := start(b)
		resp, err := client.Get(s.url + "/healthz")
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		var m mem
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
			r0 := s.memory(b).rss
			time.Sleep(time.Second) // a measurement of a process at rest, not a test's wait
			if m = s.memory(b); m.rss <= r0 && r0-m.rss < r0/100 || m.rss >= r0 && m.rss-r0 < r0/100 {
				break
			}
		}
		b.ReportMetric(float64(m.rss)/(1<<20), "idle-rss-MB")
		b.ReportMetric(float64(m.anon)/(1<<20), "idle-anon-MB")
		s.stop()
		b.StartTimer()
	}
}
