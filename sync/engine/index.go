package engine

import (
	"slices"
	"strings"
	"time"
)

// Index keys are scope keys that no read set holds (prefix "ix:"): the
// store's per-scope feed then doubles as a secondary index, read with
// Store.Pull by the engine and the KPI service, never by a device. They are
// computed from the document alone whenever its keys are (stamp, and every
// update through reindex), so restamps and retries agree on them.
//
//	ix:kpi:<rep>:<yyyy-mm>        a rep's visit logs (check-in month), visit plans
//	                              (planned start), orders (submission) and
//	                              follow-ups (due and closing months), UTC months
//	ix:open-visit:<rep>:<yyyy-mm> a rep's visit logs checked in that month and
//	                              not checked out
//	ix:order-unrouted             orders submitted and not routed yet
//
// A document that leaves an index key leaves an eviction row under it (the
// feed keeps those), which readers skip.
const (
	indexPrefix    = "ix:"
	kpiIndexPrefix = indexPrefix + "kpi:"
)

// KPIIndexKey is the index key of rep's KPI documents of the UTC month
// holding t.
func KPIIndexKey(rep string, t time.Time) string {
	return kpiIndexPrefix + rep + ":" + t.UTC().Format("2006-01")
}

// IndexUnroutedOrders is the index key of orders submitted and not routed
// yet (status submitted, no submitted_at): the workflow's sweep routes those
// whose push's routing failed and was never retried.
const IndexUnroutedOrders = "ix:order-unrouted"

// indexKeys returns the index keys of a document.
func indexKeys(collection, owner string, body map[string]any) []string {
	var keys []string
	month := func(rep string, v any) {
		if t, ok := parseTime(v); ok && rep != "" {
			keys = append(keys, KPIIndexKey(rep, t))
		}
	}
	switch collection {
	case CollVisitLogs:
		at := body[fieldCheckInAt]
		if _, ok := at.(string); !ok {
			if ci, ok := body["check_in"].(map[string]any); ok {
				at = ci["at"]
			}
		}
		month(owner, at)
		if t, ok := parseTime(at); ok && visitIsOpen(body) {
			keys = append(keys, openVisitKey(owner, t))
		}
	case CollVisitPlans:
		rep, _ := body[fieldPlanRep].(string)
		if rep == "" {
			rep = owner
		}
		month(rep, body["planned_start"])
	case CollOrders:
		month(owner, body["submitted_at"])
		if st, _ := body["status"].(string); st == "submitted" && body["submitted_at"] == nil {
			keys = append(keys, IndexUnroutedOrders)
		}
	case CollFollowUps:
		rep, _ := body["rep_id"].(string)
		month(rep, body["due_at"])
		month(rep, body["closed_at"])
	}
	return keys
}

// reindex replaces the index keys among keys with those of the document.
func reindex(keys []string, collection, owner string, body map[string]any) []string {
	out := make([]string, 0, len(keys)+2)
	for _, k := range keys {
		// Only the keys computed here; other index keys (the workflow's)
		// are computed by stamp from fields a device cannot write.
		if !strings.HasPrefix(k, kpiIndexPrefix) && !strings.HasPrefix(k, openVisitIndexPrefix) && k != IndexUnroutedOrders {
			out = append(out, k)
		}
	}
	out = append(out, indexKeys(collection, owner, body)...)
	slices.Sort(out)
	return slices.Compact(out)
}
