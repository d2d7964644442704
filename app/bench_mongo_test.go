package app_test

// Benchmarks of the sync path through real HTTP on the MongoDB store. The
// database is FerretDB, whose own speed is no reference (it filters and
// sorts in Go over whole collections), so what these measure is what does
// not depend on it: the database commands a push batch and a pull page
// cost, and the CPU fieldsync spends per mutation and per document outside
// the database. FerretDB runs in a child process (this test binary again,
// as TestFerretChild) so that getrusage of this process leaves its CPU out;
// a proxy in the child counts the commands. Figures are in
// docs/benchmarks.md:
//
//	go test ./app -run '^$' -bench 'Mongo|^BenchmarkPush$|^BenchmarkPull$' -benchtime 3x -count 3

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/ferrettest"
)

// mongoBenchDocs is the notes pushed per iteration and pulled per pass:
// fewer than the SQLite benchmarks' 10,000, because every FerretDB find
// scans its whole collection and the run would be dominated by that.
const mongoBenchDocs = 1_000

const ferretChildEnv = "FIELDSYNC_FERRET_CHILD"

// TestFerretChild is the FerretDB child process of the MongoDB benchmarks:
// it prints the URI of a FerretDB behind a counting proxy, answers
// "commands" on stdin with the counts so far, and stops when stdin closes.
func TestFerretChild(t *testing.T) {
	if os.Getenv(ferretChildEnv) != "1" {
		t.Skip("only runs as the FerretDB child process of the MongoDB benchmarks")
	}
	uri, commands, stop, err := ferrettest.StartCounted()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	fmt.Printf("FERRET_URI=%s\n", uri)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "commands" {
			b, err := json.Marshal(commands())
			if err != nil {
				t.Fatal(err)
			}
			fmt.Printf("FERRET_COMMANDS=%s\n", b)
		}
	}
}

// ferretChild is a running TestFerretChild.
type ferretChild struct {
	uri string
	in  io.WriteCloser
	out *bufio.Scanner
}

func startFerretChild(b *testing.B) *ferretChild {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFerretChild$", "-test.timeout=0")
	cmd.Env = append(os.Environ(), ferretChildEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		in.Close() // the child stops FerretDB and exits
		cmd.Wait()
	})
	fc := &ferretChild{in: in, out: bufio.NewScanner(out)}
	fc.uri = fc.expect(b, "FERRET_URI=")
	return fc
}

func (fc *ferretChild) expect(b *testing.B, prefix string) string {
	b.Helper()
	for fc.out.Scan() {
		if v, ok := strings.CutPrefix(fc.out.Text(), prefix); ok {
			return v
		}
	}
	b.Fatalf("FerretDB child: no %s line (%v)", prefix, fc.out.Err())
	return ""
}

// commands returns the commands the child's FerretDB received so far.
func (fc *ferretChild) commands(b *testing.B) map[string]int64 {
	b.Helper()
	if _, err := io.WriteString(fc.in, "commands\n"); err != nil {
		b.Fatal(err)
	}
	var got map[string]int64
	if err := json.Unmarshal([]byte(fc.expect(b, "FERRET_COMMANDS=")), &got); err != nil {
		b.Fatal(err)
	}
	return got
}

// store is the serveConfig tweak of a server on a fresh database of the
// child's FerretDB.
func (fc *ferretChild) store() func(*serveConfig) {
	db := freshMongoDatabase()
	return func(c *serveConfig) {
		quiet(c)
		c.MongoURI, c.MongoDatabase = fc.uri, db
	}
}

// commandsSince is the count of each command since before, and their total.
func commandsSince(now, before map[string]int64) (map[string]int64, int64) {
	out := map[string]int64{}
	var total int64
	for name, n := range now {
		if d := n - before[name]; d > 0 {
			out[name] = d
			total += d
		}
	}
	return out, total
}

// perOp describes commands per operation, by name.
func perOp(cmds map[string]int64, ops int) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(cmds)) {
		parts = append(parts, fmt.Sprintf("%s %.2f", name, float64(cmds[name])/float64(ops)))
	}
	return strings.Join(parts, ", ")
}

// cpuTime is the CPU this process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMongoPush pushes 1,000 notes in batches of 100 per iteration,
// like BenchmarkPush, on the MongoDB store.
func BenchmarkMongoPush(b *testing.B) {
	fc := startFerretChild(b)
	ts := startServer(b, "", fc.store())
	tok := ts.Token(b, "org-1", "u-1")
	seedBenchCustomers(b, ts.URL, ts.Token(b, "org-1", "u-admin", "admin"), "u-1")
	c := &http.Client{}
	var n, batches int
	var cpu time.Duration
	before := fc.commands(b)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		bodies := benchBodies(b, "p"+strconv.Itoa(i), mongoBenchDocs, 100)
		b.StartTimer()
		c0 := cpuTime(b)
		for _, body := range bodies {
			benchPush(b, c, ts.URL, tok, body)
		}
		cpu += cpuTime(b) - c0
		n += mongoBenchDocs
		batches += len(bodies)
	}
	cmds, total := commandsSince(fc.commands(b), before)
	b.Logf("commands per batch of 100 creates: %s", perOp(cmds, batches))
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "mutations/s")
	b.ReportMetric(float64(total)/float64(batches), "commands/batch")
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "µs-cpu/mutation")
}

// BenchmarkMongoPull pulls the owner's 1,000 notes (and the 500 customers
// they hang off) from an empty checkpoint, like BenchmarkPull, on the
// MongoDB store.
func BenchmarkMongoPull(b *testing.B) {
	fc := startFerretChild(b)
	ts := startServer(b, "", fc.store())
	tok := ts.Token(b, "org-1", "u-1")
	seedBenchCustomers(b, ts.URL, ts.Token(b, "org-1", "u-admin", "admin"), "u-1")
	c := &http.Client{}
	for _, body := range benchBodies(b, "seed", mongoBenchDocs, 100) {
		benchPush(b, c, ts.URL, tok, body)
	}
	for _, page := range []int{100, 1000} {
		b.Run(fmt.Sprintf("page=%d/gzip", page), func(b *testing.B) {
			pages := &countingTransport{base: &http.Transport{}}
			hc := &http.Client{Transport: pages}
			n := 0
			var cpu time.Duration
			before := fc.commands(b)
			for b.Loop() {
				c0 := cpuTime(b)
				n += benchPullAll(b, hc, ts.URL, tok, page)
				cpu += cpuTime(b) - c0
			}
			if n%(mongoBenchDocs+benchCustomers) != 0 {
				b.Fatalf("pulled %d documents, want a multiple of %d", n, mongoBenchDocs+benchCustomers)
			}
			cmds, total := commandsSince(fc.commands(b), before)
			p := int(pages.n.Load())
			b.Logf("commands per page of %d: %s", page, perOp(cmds, p))
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "docs/s")
			b.ReportMetric(float64(total)/float64(p), "commands/page")
			b.ReportMetric(float64(cpu.Microseconds())/float64(n), "µs-cpu/doc")
		})
	}
}

// countingTransport counts the requests it sends.
type countingTransport struct {
	base http.RoundTripper
	n    atomic.Int64
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.base.RoundTrip(r)
}
