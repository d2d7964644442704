package engine

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"strings"
	"time"
)

// Scope keys are strings a document carries and a caller's read set holds;
// a caller reads a document when the two share a key. Which keys a document
// carries and a caller holds is the Rules' to say (docs/access.md); keys
// starting with IndexPrefix are held by no read set: the store's per-key
// feed then doubles as a secondary index, which the server reads.
const IndexPrefix = "ix:"

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

// access is a caller's view for one request: the roles in force and the
// read set.
type access struct {
	actor Actor // Roles replaced by the directory's when it knows the user
	read  []string
	fp    string // fingerprint of read, carried by checkpoints
	// reports are the users a manager leads.
	reports []string
	// all is the server's own view: it reads every document.
	all bool
	// deviceTime is a push's device_time (zero: not given).
	deviceTime time.Time
}

func (a *access) sees(d *Document) bool { return a.seesKeys(d.Scopes) }

func (a *access) seesKeys(keys []string) bool {
	if a.all {
		return true
	}
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
	read := e.rules.ReadSet(actor, reports)
	sum := sha256.Sum256([]byte(strings.Join(read, "\n")))
	return &access{actor: actor, read: read, fp: base64.RawURLEncoding.EncodeToString(sum[:9]), reports: reports}, nil
}

// systemAccess is the server's own view, writing as user.
func systemAccess(org, user string) *access {
	return &access{actor: Actor{Org: org, User: user}, all: true}
}
