package engine

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
)

// Scope keys; docs/access.md is the reference.
const (
	ScopeOrg    = "org" // every document of the organisation except shared reference data: admins
	ScopePublic = "pub" // reference data every user reads (products, price lists)
)

// UserScope is the key of what a user reads as themself: the documents of
// customers assigned to them, and their own unattached documents.
func UserScope(user string) string { return "user:" + user }

// CustomerScope is the key of a customer and everything attached to it.
// Nobody reads it; the engine uses it to find what moves with the customer.
func CustomerScope(customer string) string { return "cust:" + customer }

// RoleScope is the key of what a back-office role reads: its follow-ups and
// the orders and customers they concern.
func RoleScope(role string) string { return "role:" + role }

// Roles with a meaning for scopes; every other role is a back-office role.
const (
	RoleRep     = "rep"
	RoleManager = "manager"
	RoleAdmin   = "admin"
)

// Member is what the directory says about a user, as far as the engine
// cares.
type Member struct {
	Roles    []string
	Reports  []string // users whose data the user sees as their manager
	Disabled bool
}

// Directory tells the engine who users are. The engine asks on every push
// and pull, so a disabled user or a changed role takes effect at once.
type Directory interface {
	// Member returns the user's entry; ok is false when the directory does
	// not know the user (a token minted by the operator's tools): the engine
	// then trusts the token's roles.
	Member(ctx context.Context, org, user string) (m Member, ok bool, err error)
}

// CodeUserDisabled answers every request of a disabled user.
const CodeUserDisabled = "user_disabled"

// CodeCustomerNotInScope rejects a create attached to a customer the caller
// does not see (or that does not exist: the two are indistinguishable).
const CodeCustomerNotInScope = "customer_not_in_scope"

// CodeImmutableField rejects a change of a field fixed at creation.
const CodeImmutableField = "immutable_field"

// access is a caller's view for one request: the roles in force and the
// read set.
type access struct {
	actor Actor // Roles replaced by the directory's when it knows the user
	read  []string
	fp    string // fingerprint of read, carried by checkpoints
	// reports are the users a manager leads (visit plans and reviews).
	reports []string
	// clock is what a push said about the device's clock (visits.go).
	clock clockReading
}

func (a *access) sees(d *Document) bool { return a.seesKeys(d.Scopes) }

func (a *access) seesKeys(keys []string) bool {
	for _, s := range keys {
		if _, ok := slices.BinarySearch(a.read, s); ok {
			return true
		}
	}
	return false
}

// accessOf resolves actor against the directory.
func (e *Engine) accessOf(ctx context.Context, actor Actor) (*access, error) {
	var reports []string
	if e.dir != nil {
		m, ok, err := e.dir.Member(ctx, actor.Org, actor.User)
		if err != nil {
			return nil, err
		}
		if ok {
			if m.Disabled {
				return nil, Errorf(KindForbidden, CodeUserDisabled, "", "this user is disabled; ask an administrator")
			}
			actor.Roles = m.Roles
			reports = m.Reports
		}
	}
	read := ReadSet(actor.User, actor.Roles, reports)
	sum := sha256.Sum256([]byte(strings.Join(read, "\n")))
	return &access{actor: actor, read: read, fp: base64.RawURLEncoding.EncodeToString(sum[:9]), reports: reports}, nil
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

// customerInfo is what stamping needs of a customer.
type customerInfo struct {
	reps    []string
	scopes  []string
	version int64
	seq     int64
	exists  bool
	// location is the customer's site, which visit check-ins are verified
	// against (nil when unknown).
	location *latLng
}

func infoOf(d *Document) customerInfo {
	if d == nil || d.Deleted {
		return customerInfo{}
	}
	var body struct {
		Reps     []string `json:"assigned_reps"`
		Location *struct {
			Lat float64 `json:"lat"`
			Lng float64 `json:"lng"`
		} `json:"location"`
	}
	json.Unmarshal(d.Body, &body) // validated on the way in
	info := customerInfo{reps: body.Reps, scopes: d.Scopes, version: d.Version, seq: d.Seq, exists: true}
	if l := body.Location; l != nil {
		info.location = &latLng{lat: l.Lat, lng: l.Lng}
	}
	return info
}

// customerOf returns the customer a document hangs off ("" for none).
func customerOf(collection string, body map[string]any) string {
	if collection == CollCustomers || publicCollections[collection] {
		return ""
	}
	c, _ := body["customer_id"].(string)
	return c
}

// stamp computes a document's scope keys (docs/access.md). cust is the
// customer it hangs off; prev are its current keys, from which role grants
// of orders and customers carry over.
func stamp(collection, id, owner string, body map[string]any, cust customerInfo, prev []string) []string {
	if publicCollections[collection] {
		return []string{ScopePublic}
	}
	keys := []string{ScopeOrg}
	addReps := func(reps []string) {
		for _, r := range reps {
			if r != "" {
				keys = append(keys, UserScope(r))
			}
		}
	}
	switch c := customerOf(collection, body); {
	case collection == CollCustomers:
		keys = append(keys, CustomerScope(id))
		if reps, ok := body["assigned_reps"].([]any); ok {
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
		addReps(cust.reps)
	default:
		keys = append(keys, UserScope(owner))
	}
	if collection == CollFollowUps {
		if r, _ := body["responsible_role"].(string); r != "" {
			keys = append(keys, RoleScope(r))
		}
		if u, _ := body["assigned_to"].(string); u != "" {
			keys = append(keys, UserScope(u))
		}
		keys = append(keys, followUpKeys(body)...)
	}
	keys = append(keys, indexKeys(collection, owner, body)...) // index.go
	if collection == CollOrders || collection == CollCustomers || collection == CollAttachments {
		for _, k := range prev {
			if strings.HasPrefix(k, "role:") {
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
const IndexOpenFollowUps = "ix:fu-unescalated"

// followUpKeys are the workflow's keys of a follow-up beyond its
// responsible role: the informed back-office roles read it ("rep" is the
// order's rep, who reads it through the customer), the accountable role
// once it is escalated, and the sweep's index while it is still pending.
func followUpKeys(body map[string]any) []string {
	var keys []string
	if informed, ok := body["informed_roles"].([]any); ok {
		for _, r := range informed {
			if s, _ := r.(string); s != "" && s != RoleRep {
				keys = append(keys, RoleScope(s))
			}
		}
	}
	_, escalated := body["escalated_at"].(string)
	if a, _ := body["accountable_role"].(string); a != "" && escalated {
		keys = append(keys, RoleScope(a))
	}
	switch st, _ := body["status"].(string); st {
	case "done", "cancelled":
	default:
		if !escalated {
			keys = append(keys, IndexOpenFollowUps)
		}
	}
	return keys
}
