package fieldsales

import (
	"slices"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// Index keys are scope keys that no read set holds (engine.IndexPrefix): the
// store's per-scope feed then doubles as a secondary index, read with
// Store.Pull by the rules, the workflow and the KPI service, never by a
// device. They are
// computed from the document alone whenever its keys are (stamp, and every
// update through reindex), so restamps and retries agree on them.
//
//	ix:kpi:<rep>:<yyyy-mm>        a rep's visit logs (check-in month), visit plans
//	                              (planned start), orders (submission) and
//	                              follow-ups (due and closing months), UTC months
//	ix:open-visit:<rep>:<yyyy-mm> a rep's visit logs checked in that month and
//	                              not checked out
//	ix:order-unsettled            orders whose current status the workflow has
//	                              not carried out yet (settled_status differs)
//	ix:fu-unsettled               done follow-ups of an order whose effects on
//	                              the order the workflow has not carried out yet
//	ix:customers                  every customer (an admin's customer list)
//	ix:waiting:<role>             a role's follow-ups waiting for others: not
//	                              closed, with dependencies, no due time yet
//
// A document that leaves an index key leaves an eviction row under it (the
// feed keeps those), which readers skip.
const kpiIndexPrefix = engine.IndexPrefix + "kpi:"

// KPIIndexKey is the index key of rep's KPI documents of the UTC month
// holding t.
func KPIIndexKey(rep string, t time.Time) string {
	return kpiIndexPrefix + rep + ":" + t.UTC().Format("2006-01")
}

// IndexUnsettledOrders is the index key of orders past draft whose status
// the workflow has not carried out yet: its last write for an order records
// the status it settled (settled_status), after every follow-up and move that
// status asks for is durable. An order whose push, or whose workflow, was cut
// by a crash stays under this key until the workflow's sweep settles it, so
// a crash at any point leaves nothing stranded, whoever retries or not.
const IndexUnsettledOrders = engine.IndexPrefix + "order-unsettled"

// IndexUnsettledFollowUps is the index key of done follow-ups of an order
// whose effects (the order's move, the next steps' due times) the workflow
// has not recorded as carried out (settled_at); the sweep carries them out.
const IndexUnsettledFollowUps = engine.IndexPrefix + "fu-unsettled"

// IndexCustomers is the index key every customer carries: an admin's list
// of customers reads it instead of the organisation's whole feed.
const IndexCustomers = engine.IndexPrefix + "customers"

// WaitingIndexKey is the index key of role's follow-ups that wait for
// others: not closed, with dependencies, and no due time yet (the workflow
// starts a follow-up's clock when the last of its dependencies is done). A
// queue's waiting view reads it instead of every follow-up of the role.
func WaitingIndexKey(role string) string { return waitingIndexPrefix + role }

const waitingIndexPrefix = engine.IndexPrefix + "waiting:"

// The fields that settle a document for the indexes above.
const (
	FieldSettledStatus = "settled_status"
	FieldSettledAt     = "settled_at"
)

// indexKeys returns the index keys of a document.
func indexKeys(collection, owner string, body map[string]any) []string {
	var keys []string
	month := func(rep string, v any) {
		if t, ok := parseTime(v); ok && rep != "" {
			keys = append(keys, KPIIndexKey(rep, t))
		}
	}
	switch collection {
	case CollCustomers:
		keys = append(keys, IndexCustomers)
	case CollAttachments:
		keys = append(keys, engine.AttachmentIndexKeys(body)...)
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
		month(owner, body[FieldSubmittedAt])
		if st, _ := body[FieldStatus].(string); st != "" && st != "draft" && body[FieldSettledStatus] != st {
			keys = append(keys, IndexUnsettledOrders)
		}
	case CollFollowUps:
		rep, _ := body[FieldRep].(string)
		month(rep, body[FieldDueAt])
		month(rep, body[FieldClosedAt])
		st, _ := body[FieldStatus].(string)
		if st == FollowUpDone && body[FieldOrder] != nil && body[FieldSettledAt] == nil {
			keys = append(keys, IndexUnsettledFollowUps)
		}
		deps, _ := body[FieldDependsOn].([]any)
		role, _ := body[FieldResponsibleRole].(string)
		switch st {
		case FollowUpOpen, FollowUpClaimed, FollowUpInProgress, FollowUpBlocked:
			if len(deps) > 0 && body[FieldDueAt] == nil && role != "" {
				keys = append(keys, WaitingIndexKey(role))
			}
		}
	}
	return keys
}

// reindex replaces the index keys among keys with those of the document.
func reindex(keys []string, collection, owner string, body map[string]any) []string {
	out := make([]string, 0, len(keys)+2)
	for _, k := range keys {
		// Only the keys computed here; other index keys (the workflow's)
		// are computed by stamp from fields a device cannot write.
		if !strings.HasPrefix(k, kpiIndexPrefix) && !strings.HasPrefix(k, openVisitIndexPrefix) && !strings.HasPrefix(k, waitingIndexPrefix) &&
			k != IndexUnsettledOrders && k != IndexUnsettledFollowUps && k != IndexCustomers {
			out = append(out, k)
		}
	}
	out = append(out, indexKeys(collection, owner, body)...)
	slices.Sort(out)
	return slices.Compact(out)
}
