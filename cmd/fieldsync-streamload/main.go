// Command fieldsync-streamload measures the live stream of a running
// fieldsync server: the memory each idle stream costs the server, and the
// latency from a push to the poke on every stream it concerns.
//
// It runs in its own process so that the server's figures hold only the
// server's memory; it signs its tokens with the server's key (--data).
// docs/benchmarks.md ("Live stream") has the commands and the figures.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/jwtauth"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fieldsync-streamload:", err)
		os.Exit(1)
	}
}

type config struct {
	url, pushURL string
	data, org    string
	streams      int
	rounds       int
	targeted     int
	settle       time.Duration
}

func run(args []string, out io.Writer) error {
	var c config
	fs := flag.NewFlagSet("fieldsync-streamload", flag.ContinueOnError)
	fs.StringVar(&c.url, "url", "http://127.0.0.1:8080", "the server's base URL")
	fs.StringVar(&c.pushURL, "push-url", "", "base URL of the instance the pushes go to (default --url): another instance on the same store measures the cross-instance path")
	fs.StringVar(&c.data, "data", "./data", "the server's data directory (for its signing key)")
	fs.StringVar(&c.org, "org", "org-load", "organisation to use (a fresh one per run keeps runs apart)")
	fs.IntVar(&c.streams, "streams", 1000, "concurrent streams, one rep (user) each")
	fs.IntVar(&c.rounds, "rounds", 20, "fan-out rounds: a product change that pokes every stream")
	fs.IntVar(&c.targeted, "targeted", 200, "targeted rounds: one rep's note that pokes only that rep's stream")
	fs.DurationVar(&c.settle, "settle", 150*time.Second, "longest wait for the server's memory to settle before each reading (a garbage collection since the wait began, then a steady RSS); the runtime collects an idle heap every 2 minutes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.pushURL == "" {
		c.pushURL = c.url
	}
	keys, err := jwtauth.LoadOrCreate(c.data)
	if err != nil {
		return err
	}
	mint := func(user string, roles ...string) string {
		t, err := keys.Mint(c.org, user, roles, 24*time.Hour)
		if err != nil {
			panic(err)
		}
		return t
	}
	admin := mint("u-admin", "admin")
	reps := make([]string, c.streams)
	tokens := make([]string, c.streams)
	for i := range reps {
		reps[i] = fmt.Sprintf("u-rep%d", i)
		tokens[i] = mint(reps[i], "rep")
	}
	// The reps of the targeted rounds get a customer of their own; only
	// those, so that the set-up leaves little garbage in the server's heap
	// before its memory is read.
	owners := min(c.streams, 200)
	for lo := 0; lo < owners; lo += 500 {
		var muts []map[string]any
		for i := lo; i < min(lo+500, owners); i++ {
			muts = append(muts, map[string]any{"mutation_id": "cust-" + reps[i], "collection": "customers", "id": "c-" + reps[i], "op": "create",
				"doc": map[string]any{"name": "Customer of " + reps[i], "assigned_reps": []string{reps[i]}}})
		}
		if err := push(c.pushURL, admin, "loader", muts); err != nil {
			return err
		}
	}

	// Memory is read three times, each once the server has collected its
	// garbage and its RSS holds still: before any stream, with half of
	// them and with all. The second half's increment is the cleanest
	// figure: by then the garbage of the server's start-up (argon2's
	// buffers among it) has long been given back to the system.
	m0, err := settled(out, c.url, c.settle)
	if err != nil {
		return err
	}
	// One connection per stream, as phones have.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: -1, DisableCompression: true,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext}}
	streams := make([]*sse, c.streams)
	half := c.streams / 2
	var m1 memory
	for i := range streams {
		if i == half {
			if m1, err = settled(out, c.url, c.settle); err != nil {
				return err
			}
		}
		began := time.Now()
		s, err := open(client, c.url, tokens[i], "phone")
		if err != nil {
			return fmt.Errorf("stream %d: %w", i, err)
		}
		// Each is poked at once (no position given): wait for it, so that
		// every stream is idle when memory is read.
		if _, err := s.wait(began, 30*time.Second); err != nil {
			return fmt.Errorf("stream %d: catch-up poke: %w", i, err)
		}
		streams[i] = s
	}
	m2, err := settled(out, c.url, c.settle)
	if err != nil {
		return err
	}
	per := func(a, b memory, n int) string {
		f := float64(n) * 1024
		return fmt.Sprintf("RSS %+.1f KB, Go heap in use %+.1f KB, goroutine stacks %+.1f KB, heap+stacks %+.1f KB, goroutines %+.2f",
			(b.rss-a.rss)/f, (b.heap-a.heap)/f, (b.stack-a.stack)/f, (b.heap+b.stack-a.heap-a.stack)/f, (b.goroutines-a.goroutines)/float64(n))
	}
	fmt.Fprintf(out, "server RSS %.1f MB with no stream, %.1f MB with %d, %.1f MB with %d\n", m0.rss/(1<<20), m1.rss/(1<<20), half, m2.rss/(1<<20), c.streams)
	fmt.Fprintf(out, "per idle stream, streams %d to %d: %s\n", half+1, c.streams, per(m1, m2, c.streams-half))
	fmt.Fprintf(out, "per idle stream, streams 1 to %d: %s\n", c.streams, per(m0, m2, c.streams))

	// Fan-out: one product change pokes every stream.
	var fromSent, fromAck []time.Duration
	for r := range c.rounds {
		t0 := time.Now()
		if err := push(c.pushURL, admin, "loader", []map[string]any{{"mutation_id": fmt.Sprintf("prod-%d", r), "collection": "products",
			"id": fmt.Sprintf("p-%d", r), "op": "create", "doc": map[string]any{"sku": fmt.Sprintf("SKU-%d", r), "name": "Load product"}}}); err != nil {
			return err
		}
		t1 := time.Now()
		for i, s := range streams {
			at, err := s.wait(t0, 10*time.Second)
			if err != nil {
				return fmt.Errorf("round %d, stream %d: %w", r, i, err)
			}
			fromSent = append(fromSent, at.Sub(t0))
			fromAck = append(fromAck, at.Sub(t1))
		}
	}
	report(out, fmt.Sprintf("fan-out (%d rounds x %d streams), from push sent", c.rounds, c.streams), fromSent)
	report(out, "fan-out, from push acknowledged (negative: the poke came first)", fromAck)

	// Targeted: one rep's note pokes one stream among all the idle ones.
	fromSent, fromAck = nil, nil
	for r := range c.targeted {
		i := (r * 7919) % owners
		t0 := time.Now()
		if err := push(c.pushURL, tokens[i], "phone", []map[string]any{{"mutation_id": fmt.Sprintf("note-%d", r), "collection": "customer_notes",
			"id": fmt.Sprintf("n-%d", r), "op": "create", "doc": map[string]any{"customer_id": "c-" + reps[i], "text": "load", "created_at": "2026-11-29T09:00:00Z"}}}); err != nil {
			return err
		}
		t1 := time.Now()
		at, err := streams[i].wait(t0, 10*time.Second)
		if err != nil {
			return fmt.Errorf("targeted round %d: %w", r, err)
		}
		fromSent = append(fromSent, at.Sub(t0))
		fromAck = append(fromAck, at.Sub(t1))
	}
	report(out, fmt.Sprintf("targeted (%d rounds, 1 of %d streams), from push sent", c.targeted, c.streams), fromSent)
	report(out, "targeted, from push acknowledged", fromAck)
	for _, s := range streams {
		s.close()
	}
	return nil
}

func report(out io.Writer, what string, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	q := func(p float64) time.Duration { return d[min(len(d)-1, int(p*float64(len(d))))] }
	fmt.Fprintf(out, "%s: n=%d p50=%s p90=%s p99=%s max=%s\n", what, len(d),
		q(0.50).Round(10*time.Microsecond), q(0.90).Round(10*time.Microsecond), q(0.99).Round(10*time.Microsecond), d[len(d)-1].Round(10*time.Microsecond))
}

func push(base, token, device string, muts []map[string]any) error {
	body, _ := json.Marshal(map[string]any{"device_id": device, "mutations": muts})
	req, _ := http.NewRequest("POST", base+"/v1/sync/push", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || bytes.Contains(raw, []byte(`"rejected"`)) {
		return fmt.Errorf("push: %d %s", resp.StatusCode, raw)
	}
	return nil
}

// sse is one stream; pokes carry the time they were read.
type sse struct {
	body  io.ReadCloser
	pokes chan time.Time
}

func open(client *http.Client, base, token, device string) (*sse, error) {
	req, _ := http.NewRequest("GET", base+"/v1/sync/stream?device_id="+device, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	s := &sse{body: resp.Body, pokes: make(chan time.Time, 1024)}
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if sc.Text() == "event: poke" {
				s.pokes <- time.Now()
			}
		}
		close(s.pokes)
	}()
	return s, nil
}

// wait returns the time of the first poke read at or after since.
func (s *sse) wait(since time.Time, timeout time.Duration) (time.Time, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case at, ok := <-s.pokes:
			if !ok {
				return time.Time{}, fmt.Errorf("stream ended")
			}
			if !at.Before(since) {
				return at, nil
			}
		case <-t.C:
			return time.Time{}, fmt.Errorf("no poke within %s", timeout)
		}
	}
}

func (s *sse) close() { s.body.Close() }

// settled waits until the server has collected garbage since the call and
// its RSS holds still, or max has passed, and returns its memory then.
func settled(out io.Writer, base string, max time.Duration) (memory, error) {
	first, err := serverMemory(base)
	if err != nil {
		return memory{}, err
	}
	deadline := time.Now().Add(max)
	prev := first
	for {
		time.Sleep(2 * time.Second)
		m, err := serverMemory(base)
		if err != nil {
			return memory{}, err
		}
		if m.gcs > first.gcs && m.rss-prev.rss < 256<<10 && prev.rss-m.rss < 256<<10 {
			return m, nil
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(out, "(memory not settled after %s: %d collections since the wait began)\n", max, int(m.gcs-first.gcs))
			return m, nil
		}
		prev = m
	}
}

// memory is what the server's /metrics says of its process.
type memory struct{ rss, heap, stack, goroutines, gcs float64 }

var memMu sync.Mutex

func serverMemory(base string) (memory, error) {
	memMu.Lock()
	defer memMu.Unlock()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return memory{}, err
	}
	defer resp.Body.Close()
	var m memory
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch name {
		case "process_resident_memory_bytes":
			m.rss = v
		case "go_memstats_heap_inuse_bytes":
			m.heap = v
		case "go_memstats_stack_inuse_bytes":
			m.stack = v
		case "go_goroutines":
			m.goroutines = v
		case "go_gc_duration_seconds_count":
			m.gcs = v
		}
	}
	if m.rss == 0 {
		return m, fmt.Errorf("%s/metrics has no process_resident_memory_bytes", base)
	}
	return m, sc.Err()
}
