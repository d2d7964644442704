package fieldsales

import (
	"slices"
	"strings"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// Scope keys; docs/access.md is the reference.
const (
	ScopeOrg    = "org" // every document of the organisation except shared reference data: admins
	ScopePublic = "pub" // reference data every user reads (products, price lists)
)

const (
	userPrefix = "user:"
	rolePrefix = "role:"
)

// UserScope is the key of what a user reads as themself: the documents of
// customers assigned to them, and their own unattached documents.
func UserScope(user string) string { return userPrefix + user }

// CustomerScope is the key of a customer and everything attached to it.
// Nobody reads it; the engine lists what moves with the customer by it.
func CustomerScope(customer string) string { return "cust:" + customer }

// RoleScope is the key of what a back-office role reads: its follow-ups and
// the orders and customers they concern.
func RoleScope(role string) string { return rolePrefix + role }

func isUserKey(k string) bool { return strings.HasPrefix(k, userPrefix) }

// CodeCustomerNotInScope rejects a create attached to a customer the caller
// does not see (or that does not exist: the two are indistinguishable).
const CodeCustomerNotInScope = "customer_not_in_scope"

// Roles with a meaning for scopes; every other role is a back-office role.
const (
	RoleRep     = "rep"
	RoleManager = "manager"
	RoleAdmin   = "admin"
)

// ReadSet returns the sorted scope keys a user reads, given their roles and,
// for managers, the users they lead.
func (r *Rules) ReadSet(actor engine.Actor, reports []string) []string {
	return ReadSet(actor.User, actor.Roles, reports)
}

// ReadSet returns the sorted scope keys a user reads, given their roles and,
// for managers, the users they lead.
func ReadSet(user string, roles, reports []string) []string {
	read := []string{UserScope(user), ScopePublic}
	for _, r := range roles {
		switch r {
		case RoleRep:
		case RoleManager:
			for _, u := range reports {
				read = append(read, UserScope(u))
			}
			// Managers also work a queue of the responsibility matrix
			// (price approvals): its follow-ups and what they concern.
			read = append(read, RoleScope(RoleManager))
		case RoleAdmin:
			read = append(read, ScopeOrg)
		default:
			read = append(read, RoleScope(r))
		}
	}
	slices.Sort(read)
	return slices.Compact(read)
}

// publicCollections hold reference data every user of the organisation reads
// and only the server and admins write.
var publicCollections = map[string]bool{CollProducts: true, CollPriceLists: true}

// customerOf returns the customer a document hangs off ("" for none).
func customerOf(collection string, body map[string]any) string {
	if collection == CollCustomers || publicCollections[collection] {
		return ""
	}
	c, _ := body[FieldCustomer].(string)
	return c
}

// Keys computes a document's scope keys: all of them (stamp), or those its
// own fields decide (reindex).
func (r *Rules) Keys(k engine.Keying) []string {
	if k.Own {
		return reindex(k.Prev, k.Collection, k.Owner, k.Body)
	}
	return stamp(k.Collection, k.ID, k.Owner, k.Body, r.Inherited(k.Parent), k.Prev)
}

// stamp computes a document's scope keys (docs/access.md). reps are the
// keys of the customer it hangs off (Inherited); prev are its current keys,
// from which role grants of orders, customers and files carry over.
func stamp(collection, id, owner string, body map[string]any, reps, prev []string) []string {
	if publicCollections[collection] {
		return []string{ScopePublic}
	}
	keys := []string{ScopeOrg}
	switch c := customerOf(collection, body); {
	case collection == CollCustomers:
		keys = append(keys, CustomerScope(id))
		if reps, ok := body[FieldAssignedReps].([]any); ok {
			for _, r := range reps {
				if s, ok := r.(string); ok && s != "" {
					keys = append(keys, UserScope(s))
				}
			}
		}
	case c != "":
		// Visibility follows the customer, not the author: when the
		// customer moves to another rep, its history moves too.
		keys = append(keys, CustomerScope(c))
		keys = append(keys, reps...)
	default:
		keys = append(keys, UserScope(owner))
	}
	if collection == CollFollowUps {
		if r, _ := body[FieldResponsibleRole].(string); r != "" {
			keys = append(keys, RoleScope(r))
		}
		if u, _ := body[FieldAssignedTo].(string); u != "" {
			keys = append(keys, UserScope(u))
		}
		keys = append(keys, followUpKeys(body)...)
	}
	keys = append(keys, indexKeys(collection, owner, body)...) // index.go
	if collection == CollOrders || collection == CollCustomers || collection == CollAttachments {
		for _, k := range prev {
			if strings.HasPrefix(k, rolePrefix) {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// IndexOpenFollowUps is an index key (never read by users): the follow-ups
// still open and not yet escalated, which the workflow's overdue sweep scans
// instead of every follow-up of the organisation.
const IndexOpenFollowUps = engine.IndexPrefix + "fu-unescalated"

// followUpKeys are the workflow's keys of a follow-up beyond its
// responsible role: the informed back-office roles read it ("rep" is the
// order's rep, who reads it through the customer), the accountable role
// once it is escalated, and the sweep's index while it is still pending.
func followUpKeys(body map[string]any) []string {
	var keys []string
	if informed, ok := body[FieldInformedRoles].([]any); ok {
		for _, r := range informed {
			if s, _ := r.(string); s != "" && s != RoleRep {
				keys = append(keys, RoleScope(s))
			}
		}
	}
	_, escalated := body[FieldEscalatedAt].(string)
	if a, _ := body[FieldAccountableRole].(string); a != "" && escalated {
		keys = append(keys, RoleScope(a))
	}
	switch st, _ := body[FieldStatus].(string); st {
	case FollowUpDone, FollowUpCancelled:
	default:
		if !escalated {
			keys = append(keys, IndexOpenFollowUps)
		}
	}
	return keys
}

// Grants: a follow-up's responsible role reads the order and the customer
// it concerns, and an escalated follow-up's accountable role the order.
func (r *Rules) Grants(d *engine.Document, body map[string]any) map[engine.DocRef][]string {
	if d.Collection != CollFollowUps {
		return nil
	}
	out := map[engine.DocRef][]string{}
	order, _ := body[FieldOrder].(string)
	if role, _ := body[FieldResponsibleRole].(string); role != "" {
		if order != "" {
			out[engine.DocRef{Collection: CollOrders, ID: order}] = []string{RoleScope(role)}
		}
		if c, _ := body[FieldCustomer].(string); c != "" {
			out[engine.DocRef{Collection: CollCustomers, ID: c}] = []string{RoleScope(role)}
		}
	}
	if a, _ := body[FieldAccountableRole].(string); a != "" && body[FieldEscalatedAt] != nil && order != "" {
		ref := engine.DocRef{Collection: CollOrders, ID: order}
		out[ref] = append(out[ref], RoleScope(a))
	}
	return out
}
