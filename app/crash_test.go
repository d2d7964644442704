package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/patience"
)

// TestCrashConsistencyAfterSIGKILL kills the real binary in the middle of a
// burst of both workflow paths (issue 12: a crash between two writes of
// one push, or of a back-office action, stranded orders): a rep's phones
// submit orders, one per push, while the order desk completes ERP entries,
// and nobody retries anything after the kill. After a restart, every order
// must be consistent: routed with all its follow-ups, confirmed with its ERP
// number when its ERP entry is done (and the dispatch step's clock started),
// and recorded as settled. The restarted server's sweep carries out what the
// kill cut short (docs/workflows.md, "Crashes").
func TestCrashConsistencyAfterSIGKILL(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	op := runBinary(t, "token", "--any-user", "--data", data, "--org", "acme", "--user", "operator", "--role", "admin")
	p := startBinary(t, data)
	for _, u := range []struct{ id, role string }{{"rep-1", "rep"}, {"od-1", "order_desk"}, {"dp-1", "demand_planning"}} {
		body := mustJSON(t, map[string]any{"id": u.id, "email": u.id + "@acme.example", "name": u.id, "roles": []string{u.role}})
		if st, raw := doRaw(t, "POST", p.URL+"/v1/admin/users", op, body); st != 201 {
			t.Fatalf("user %s: %d %s", u.id, st, raw)
		}
	}
	for coll, doc := range map[string]map[string]any{
		"products":  {"id": "p-1", "fields": map[string]any{"sku": "M-1", "name": "Motor", "list_price": "100", "currency": "EUR"}},
		"customers": {"id": "c-1", "fields": map[string]any{"name": "Pumpen AG", "assigned_reps": []string{"rep-1"}}},
	} {
		if st, raw := doRaw(t, "POST", p.URL+"/v1/admin/documents/"+coll, op, mustJSON(t, map[string]any{"docs": []any{doc}})); st != 200 {
			t.Fatalf("%s: %d %s", coll, st, raw)
		}
	}
	tok := func(user, role string) string {
		return runBinary(t, "token", "--any-user", "--data", data, "--org", "acme", "--user", user, "--role", role)
	}
	rep, desk, planner := tok("rep-1", "rep"), tok("od-1", "order_desk"), tok("dp-1", "demand_planning")
	client := &http.Client{Timeout: patience.Of(t)}
	post := func(tok, url string, body any) (int, []byte) {
		req, _ := http.NewRequest("POST", url, bytes.NewReader(mustJSON(t, body)))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.Bytes()
	}
	order := func(id string) map[string]any {
		return map[string]any{"mutation_id": "m-" + id, "collection": "orders", "id": id, "op": "create",
			"doc": map[string]any{"customer_id": "c-1", "status": "submitted", "lines": []map[string]any{{"product_id": "p-1", "quantity": 2}}}}
	}
	// Before the burst: orders whose ERP entry the desk can complete.
	const ready = 30
	for i := range ready {
		id := fmt.Sprintf("pre-%02d", i)
		if st, raw := post(rep, p.URL+"/v1/sync/push", push("phone-0", order(id))); st != 200 || !strings.Contains(string(raw), `"applied"`) {
			t.Fatalf("order %s: %d %s", id, st, raw)
		}
		if st, raw := post(planner, p.URL+"/v1/followups/fu-"+id+"-availability_check/complete", map[string]any{"note": "in stock"}); st != 200 {
			t.Fatalf("availability of %s: %d %s", id, st, raw)
		}
	}

	// The burst: no retries; a request the kill cut is simply dropped.
	var submitted, completed atomic.Int64
	stop := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for d := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("b%d-%03d", d, i)
				if st, _ := post(rep, p.URL+"/v1/sync/push", push(fmt.Sprintf("phone-%d", d+1), order(id))); st != 200 {
					return
				}
				if submitted.Add(1) == 60 {
					once.Do(func() { close(stop) })
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range ready {
			select {
			case <-stop:
				return
			default:
			}
			fu := fmt.Sprintf("fu-pre-%02d-erp_entry", i)
			if st, _ := post(desk, p.URL+"/v1/followups/"+fu+"/complete", map[string]any{"result": map[string]any{"erp_number": fmt.Sprintf("45%08d", i)}}); st != 200 {
				return
			}
			completed.Add(1)
		}
	}()
	<-stop
	// Kill while the other phones and the desk are mid-request.
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	wg.Wait()

	p2 := startBinary(t, data)
	var problems []string
	deadline := time.Now().Add(max(90*time.Second, patience.Of(t)))
	for {
		problems = inconsistentOrders(t, p2.URL, op, desk)
		if len(problems) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond) // the restarted server's first sweep is under way
	}
	if len(problems) > 0 {
		t.Fatalf("after the kill and a restart, %d problems, first: %s", len(problems), strings.Join(problems[:min(10, len(problems))], "; "))
	}
	t.Logf("consistent after SIGKILL: %d orders submitted and %d ERP entries completed in the burst", submitted.Load(), completed.Load())
}

// inconsistentOrders lists what is wrong with the organisation's orders,
// read as its admin; desk must see every order with an ERP entry.
func inconsistentOrders(t *testing.T, base, admin, desk string) []string {
	docs, _ := pullAll(t, base, admin, "", 1000)
	desks, _ := pullAll(t, base, desk, "", 1000)
	body := func(k string) map[string]any {
		var m map[string]any
		if raw, ok := docs[k]; ok {
			json.Unmarshal(raw, &m)
		}
		return m
	}
	var out []string
	for k := range docs {
		id, ok := strings.CutPrefix(k, "orders/")
		if !ok {
			continue
		}
		o := body(k)
		status, _ := o["status"].(string)
		if o["submitted_at"] == nil {
			out = append(out, fmt.Sprintf("%s is %s and was never routed", id, status))
			continue
		}
		if o["settled_status"] != status {
			out = append(out, fmt.Sprintf("%s is %s, settled as %v", id, status, o["settled_status"]))
		}
		for _, a := range []string{"availability_check", "erp_entry", "dispatch", "delivery", "invoice"} {
			if body("follow_ups/fu-"+id+"-"+a) == nil {
				out = append(out, fmt.Sprintf("%s has no %s follow-up", id, a))
			}
		}
		erp := body("follow_ups/fu-" + id + "-erp_entry")
		if _, seen := desks[k]; erp != nil && !seen {
			out = append(out, fmt.Sprintf("%s: the order desk does not see the order of its ERP entry", id))
		}
		if erp["status"] != "done" {
			continue
		}
		result, _ := erp["result"].(map[string]any)
		if status != "confirmed" || o["erp_number"] != result["erp_number"] {
			out = append(out, fmt.Sprintf("%s: ERP entry done (%v) but the order is %s with ERP number %v", id, result["erp_number"], status, o["erp_number"]))
		}
		if body("follow_ups/fu-" + id + "-dispatch")["due_at"] == nil {
			out = append(out, fmt.Sprintf("%s: ERP entry done but dispatch has no due time", id))
		}
		if erp["settled_at"] == nil {
			out = append(out, fmt.Sprintf("%s: ERP entry done but not settled", id))
		}
	}
	return out
}
