package workflow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Error codes of the follow-up API (docs/protocol.md).
const (
	// CodeDependencyOpen refuses to complete a follow-up while one it
	// depends on is not done; nothing changes.
	CodeDependencyOpen = "dependency_open"
	// CodeInvalidState refuses an action the follow-up's state does not
	// allow (claiming a done one, or one that changed meanwhile).
	CodeInvalidState = "invalid_state"
	// CodeClaimedByOther refuses to act on a follow-up someone else
	// claimed (admins excepted).
	CodeClaimedByOther = "claimed_by_other"
	// CodeResultRequired refuses a completion without a result field the
	// activity requires (e.g. erp_number).
	CodeResultRequired = "result_required"
	// CodeAttachmentRequired refuses a completion whose result field does
	// not name a file attached to the follow-up or its order, where the
	// activity asks for one (a proof of delivery).
	CodeAttachmentRequired = "attachment_required"
)

// Lengths follow_ups.json allows.
const (
	maxReason = 2000
	maxNote   = 5000
)

// Follow-up statuses (fieldsales declares them with the follow-up's shape).
const (
	FUOpen       = fieldsales.FollowUpOpen
	FUClaimed    = fieldsales.FollowUpClaimed
	FUInProgress = fieldsales.FollowUpInProgress
	FUBlocked    = fieldsales.FollowUpBlocked
	FUDone       = fieldsales.FollowUpDone
	FUCancelled  = fieldsales.FollowUpCancelled
)

var fuStatuses = []string{FUOpen, FUClaimed, FUInProgress, FUBlocked, FUDone, FUCancelled}

// Actions on a follow-up.
const (
	ActClaim    = "claim"
	ActStart    = "start"
	ActBlock    = "block"
	ActComplete = "complete"
)

// Action is one request of the follow-up API.
type Action struct {
	Kind   string
	Reason string         // block
	Note   string         // complete
	Result map[string]any // complete
}

// FollowUp is a follow-up as the API shows it.
type FollowUp struct {
	ID      string          `json:"id"`
	Version int64           `json:"version"`
	Doc     json.RawMessage `json:"doc"`
}

// from lists the states each action may start from. Repeating an action
// that already took effect (claim by the claimer, complete by the
// completer) answers the follow-up as it is, so a lost reply can be retried.
var from = map[string][]string{
	ActClaim:    {FUOpen},
	ActStart:    {FUOpen, FUClaimed, FUBlocked},
	ActBlock:    {FUOpen, FUClaimed, FUInProgress, FUBlocked},
	ActComplete: {FUOpen, FUClaimed, FUInProgress, FUBlocked},
}

// resolve gives the caller the directory's roles (a disabled user is
// refused) and the read set those roles give.
func (s *Service) resolve(ctx context.Context, actor engine.Actor) (engine.Actor, []string, error) {
	if s.cfg.Directory != nil {
		m, ok, err := s.cfg.Directory.Member(ctx, actor.Org, actor.User)
		if err != nil {
			return actor, nil, err
		}
		if ok {
			if m.Disabled {
				return actor, nil, engine.Errorf(engine.KindForbidden, engine.CodeUserDisabled, "", "this user is disabled; ask an administrator")
			}
			actor.Roles = m.Roles
		}
	}
	return actor, fieldsales.ReadSet(actor.User, actor.Roles, nil), nil
}

// Act applies an action of the caller to follow-up id (docs/workflows.md,
// "Follow-up API"). Another organisation's id, and one the caller cannot
// see, answer not found exactly like a missing one.
func (s *Service) Act(ctx context.Context, caller engine.Actor, id string, act Action) (*FollowUp, error) {
	actor, read, err := s.resolve(ctx, caller)
	if err != nil {
		return nil, err
	}
	// The write expects the follow-up as read (its history grows from
	// that); another write in between (the sweep's escalation, a
	// colleague's action) sends this one round again, to decide afresh.
	for attempt := 1; ; attempt++ {
		fu, err := s.act(ctx, actor, read, id, act)
		if !errors.Is(err, errChanged) {
			return fu, err
		}
		if attempt == actAttempts {
			return nil, engine.Errorf(engine.KindConflict, CodeInvalidState, "/status", "the follow-up changed meanwhile; read it again")
		}
	}
}

// actAttempts bounds Act's rounds against writes racing it.
const actAttempts = 5

// errChanged is act's answer when the follow-up changed between its read
// and its write.
var errChanged = errors.New("follow-up changed meanwhile")

// act is one round of Act: read, decide, write expecting what was read.
func (s *Service) act(ctx context.Context, actor engine.Actor, read []string, id string, act Action) (*FollowUp, error) {
	notFound := engine.Errorf(engine.KindNotFound, engine.CodeNotFound, "", "no follow-up %q", id)
	ref := engine.DocRef{Collection: fieldsales.CollFollowUps, ID: id}
	got, err := s.cfg.Docs.Get(ctx, actor.Org, []engine.DocRef{ref})
	if err != nil {
		return nil, err
	}
	d := got[ref]
	if d == nil || d.Deleted || !sees(read, d.Scopes) {
		return nil, notFound
	}
	body := decode(d)
	admin := actor.HasRole(fieldsales.RoleAdmin)
	if !admin && !actor.HasRole(str(body, fieldsales.FieldResponsibleRole)) {
		return nil, engine.Errorf(engine.KindForbidden, engine.CodeForbidden, "",
			"only the %s role works this follow-up", str(body, fieldsales.FieldResponsibleRole))
	}
	status, assignee := str(body, "status"), str(body, "assigned_to")
	// Retries of what already took effect.
	switch {
	case act.Kind == ActClaim && status == FUClaimed && assignee == actor.User,
		act.Kind == ActStart && status == FUInProgress && assignee == actor.User:
		return toFollowUp(d), nil
	case act.Kind == ActComplete && status == FUDone && str(body, "closed_by") == actor.User:
		// The order's move may have been interrupted: redo it.
		return toFollowUp(d), s.afterDone(ctx, actor.Org, d)
	}
	if !slices.Contains(from[act.Kind], status) {
		return nil, engine.Errorf(engine.KindConflict, CodeInvalidState, "/status", "a %s follow-up cannot be %s", status, pastTense(act.Kind))
	}
	if assignee != "" && assignee != actor.User && !admin {
		return nil, engine.Errorf(engine.KindConflict, CodeClaimedByOther, "/assigned_to", "%s claimed this follow-up", assignee)
	}
	f := map[string]any{}
	switch act.Kind {
	case ActClaim:
		f["status"], f["assigned_to"] = FUClaimed, actor.User
	case ActStart:
		f["status"], f["blocked_reason"] = FUInProgress, nil
		if assignee == "" {
			f["assigned_to"] = actor.User
		}
	case ActBlock:
		if strings.TrimSpace(act.Reason) == "" || len(act.Reason) > maxReason {
			return nil, engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/reason", "a blocked follow-up needs a reason of at most %d bytes", maxReason)
		}
		// blocked_at tells a second block for the same reason from the
		// first (the push triggers key on it).
		f["status"], f["blocked_reason"], f["blocked_at"] = FUBlocked, act.Reason, stamp(s.now())
	case ActComplete:
		if len(act.Note) > maxNote {
			return nil, engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/note", "a note is at most %d bytes", maxNote)
		}
		if err := s.checkComplete(ctx, actor.Org, id, body, act); err != nil {
			return nil, err
		}
		f["status"], f["note"], f["closed_at"], f["closed_by"] = FUDone, act.Note, stamp(s.now()), actor.User
		f["blocked_reason"] = nil
		if act.Result != nil {
			f["result"] = act.Result
		}
		if assignee == "" {
			f["assigned_to"] = actor.User
		}
	}
	var reason string
	if act.Kind == ActBlock {
		reason = act.Reason
	}
	f["history"] = withEvent(body, event(s.now(), histAction[act.Kind], actor.User, reason))
	doc := engine.UpsertDoc{Collection: fieldsales.CollFollowUps, ID: id, Fields: map[string]json.RawMessage{},
		Expect: &engine.Expect{Field: "status", In: []string{status}, Version: d.Version}}
	for k, v := range f {
		doc.Fields[k] = raw(v)
	}
	// A completion commits with what it implies (the order's move, the next
	// steps), in one store write (effects.go).
	var plan engine.EffectPlan
	if act.Kind == ActComplete {
		if plan, err = s.completion(ctx, actor.Org, d); err != nil {
			return nil, err
		}
	}
	outs, err := s.cfg.Writer.UpsertWith(ctx, actor, "followups", []engine.UpsertDoc{doc}, plan)
	if err != nil {
		return nil, err
	}
	if o := outs[0]; o.Status == engine.StatusRejected {
		if o.Error.Code == engine.CodePreconditionFailed {
			return nil, errChanged
		}
		// A schema failure (a note too long): point into the request body.
		return nil, engine.Errorf(engine.KindInvalid, o.Error.Code, strings.TrimPrefix(o.Error.Pointer, "/fields"), "%s", o.Error.Message)
	}
	got, err = s.cfg.Docs.Get(ctx, actor.Org, []engine.DocRef{ref})
	if err != nil {
		return nil, err
	}
	d = got[ref]
	if d == nil {
		return nil, notFound
	}
	return toFollowUp(d), nil
}

func pastTense(kind string) string {
	switch kind {
	case ActClaim:
		return "claimed"
	case ActStart:
		return "started"
	case ActBlock:
		return "blocked"
	}
	return "completed"
}

// checkComplete refuses a completion whose dependencies are open or whose
// result lacks what the activity requires.
func (s *Service) checkComplete(ctx context.Context, org, id string, body map[string]any, act Action) error {
	deps := stringList(body["depends_on"])
	open, err := s.openDependencies(ctx, org, [][]string{deps})
	if err != nil {
		return err
	}
	if len(open[0]) > 0 {
		return engine.Errorf(engine.KindConflict, CodeDependencyOpen, "/depends_on/"+itoa(slices.Index(deps, open[0][0])),
			"%s must be done first", open[0][0])
	}
	if body["matrix_version"] == nil {
		return nil
	}
	m, err := s.version(ctx, org, str(body, "matrix_version"))
	if err != nil {
		return err
	}
	if a := m.Activity(str(body, "activity")); a != nil {
		for _, k := range a.Requires {
			if v, _ := act.Result[k].(string); strings.TrimSpace(v) == "" {
				return engine.Errorf(engine.KindInvalid, CodeResultRequired, "/result/"+k, "completing %s needs result.%s", a.ID, k)
			}
		}
		for _, k := range a.Attachments {
			ok, err := s.attached(ctx, org, act.Result[k], engine.DocRef{Collection: fieldsales.CollFollowUps, ID: id},
				engine.DocRef{Collection: fieldsales.CollOrders, ID: str(body, "order_id")})
			if err != nil {
				return err
			}
			if !ok {
				return engine.Errorf(engine.KindInvalid, CodeAttachmentRequired, "/result/"+k,
					"completing %s needs result.%s to be the id of a file attached to this follow-up or its order", a.ID, k)
			}
		}
		if a.OnDone != nil {
			return s.checkCopied(ctx, org, str(body, "order_id"), a.OnDone.Copy, act.Result)
		}
	}
	return nil
}

// checkCopied refuses result fields the completion would copy onto order
// oid that its schema does not take (an ERP number longer than the order
// allows), at /result/<field>, so that the follow-up is not done while its
// order cannot move.
func (s *Service) checkCopied(ctx context.Context, org, oid string, copied []string, result map[string]any) error {
	if s.cfg.Schemas == nil || oid == "" || len(copied) == 0 {
		return nil
	}
	ref := engine.DocRef{Collection: fieldsales.CollOrders, ID: oid}
	got, err := s.cfg.Docs.Get(ctx, org, []engine.DocRef{ref})
	if err != nil {
		return err
	}
	o := got[ref]
	if o == nil || o.Deleted {
		return nil
	}
	var body map[string]any
	dec := json.NewDecoder(bytes.NewReader(o.Body))
	dec.UseNumber()
	if dec.Decode(&body) != nil || body == nil {
		return nil
	}
	for _, k := range copied {
		if v, ok := result[k]; ok {
			body[k] = v
		}
	}
	v := s.cfg.Schemas.Validate(fieldsales.CollOrders, body)
	if v == nil {
		return nil
	}
	field, _, _ := strings.Cut(strings.TrimPrefix(v.Pointer, "/"), "/")
	if !slices.Contains(copied, field) {
		return nil // the order's own trouble, not this completion's
	}
	return engine.Errorf(engine.KindInvalid, engine.CodeSchemaViolation, "/result"+v.Pointer,
		"result.%s goes onto the order, which does not take it: %s", field, v.Message)
}

// attached reports whether v is the id of a live file attached to one of
// parents.
func (s *Service) attached(ctx context.Context, org string, v any, parents ...engine.DocRef) (bool, error) {
	id, _ := v.(string)
	if id == "" {
		return false, nil
	}
	ref := engine.DocRef{Collection: engine.CollAttachments, ID: id}
	got, err := s.cfg.Docs.Get(ctx, org, []engine.DocRef{ref})
	if err != nil {
		return false, err
	}
	d := got[ref]
	if d == nil || d.Deleted {
		return false, nil
	}
	var m struct {
		ParentCollection string `json:"parent_collection"`
		ParentID         string `json:"parent_id"`
		DeletedAt        string `json:"deleted_at"`
	}
	if err := json.Unmarshal(d.Body, &m); err != nil || m.DeletedAt != "" {
		return false, err
	}
	return slices.Contains(parents, engine.DocRef{Collection: m.ParentCollection, ID: m.ParentID}), nil
}

// afterDone carries out what completing a follow-up does: the order moves
// as the matrix says (only from the statuses it names), and whatever the
// order's new state or this completion triggers is created. Idempotent.
func (s *Service) afterDone(ctx context.Context, org string, fu *engine.Document) error {
	body := decode(fu)
	oid := str(body, "order_id")
	if oid == "" {
		return nil
	}
	if body["matrix_version"] == nil {
		return s.settleFollowUp(ctx, org, fu.ID, body) // not the matrix's: no effects
	}
	m, err := s.version(ctx, org, str(body, "matrix_version"))
	if err != nil {
		return err
	}
	if doc, ok := onDoneMove(m, body, s.now()); ok {
		if _, err := s.write(ctx, org, doc); err != nil {
			return err
		}
	}
	ref := engine.DocRef{Collection: fieldsales.CollOrders, ID: oid}
	got, err := s.cfg.Docs.Get(ctx, org, []engine.DocRef{ref})
	if err != nil {
		return err
	}
	if o := got[ref]; o != nil && !o.Deleted {
		if err := s.reconcileOrder(ctx, org, o); err != nil {
			return err
		}
	}
	// Last: the completion's effects are durable.
	return s.settleFollowUp(ctx, org, fu.ID, body)
}

// settleFollowUp records that what completing follow-up id does is done
// (fieldsales.IndexUnsettledFollowUps); a crash before it leaves that to the
// sweep.
func (s *Service) settleFollowUp(ctx context.Context, org, id string, body map[string]any) error {
	doc, ok := settleFollowUpDoc(id, body, s.now())
	if !ok {
		return nil
	}
	_, err := s.write(ctx, org, doc)
	return err
}

// onDoneMove is the order's move that completing follow-up body makes, as
// the matrix m says: only from the statuses it names.
func onDoneMove(m *Matrix, body map[string]any, at time.Time) (engine.UpsertDoc, bool) {
	a := m.Activity(str(body, "activity"))
	if a == nil || a.OnDone == nil {
		return engine.UpsertDoc{}, false
	}
	now := stamp(at)
	f := map[string]any{"status": a.OnDone.To, "status_changed_at": now}
	result, _ := body["result"].(map[string]any)
	for _, k := range a.OnDone.Copy {
		if v, ok := result[k]; ok {
			f[k] = v
		}
	}
	switch a.OnDone.To {
	case StatusConfirmed:
		f["confirmed_at"] = now
	case StatusDelivered:
		f["delivered_at"] = now
	case StatusInvoiced:
		f["invoiced_at"] = now
	case StatusSubmitted:
		f["status_reason"] = nil
	}
	doc := engine.UpsertDoc{Collection: fieldsales.CollOrders, ID: str(body, "order_id"), Fields: map[string]json.RawMessage{},
		Expect: &engine.Expect{Field: "status", In: a.OnDone.From}}
	for k, v := range f {
		doc.Fields[k] = raw(v)
	}
	return doc, true
}

// settleFollowUpDoc is the write recording a completion's effects as
// carried out; false when it is recorded already.
func settleFollowUpDoc(id string, body map[string]any, at time.Time) (engine.UpsertDoc, bool) {
	if body[fieldsales.FieldSettledAt] != nil {
		return engine.UpsertDoc{}, false
	}
	return engine.UpsertDoc{Collection: fieldsales.CollFollowUps, ID: id,
		Fields: map[string]json.RawMessage{fieldsales.FieldSettledAt: raw(stamp(at))},
		Expect: &engine.Expect{Field: fieldsales.FieldSettledAt, In: []string{""}}}, true
}

func toFollowUp(d *engine.Document) *FollowUp {
	return &FollowUp{ID: d.ID, Version: d.Version, Doc: d.Body}
}

func sees(read, keys []string) bool {
	for _, k := range keys {
		if _, ok := slices.BinarySearch(read, k); ok {
			return true
		}
	}
	return false
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
