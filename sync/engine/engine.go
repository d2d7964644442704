package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"sync"
	"time"
)

// Limits bound the work one request may ask for. Every one is documented in
// docs/protocol.md and configurable by the operator.
type Limits struct {
	MaxMutations int // per push
	MaxDocBytes  int // per resulting document body
	PageSize     int // pull page when the client does not ask
	MaxPageSize  int // largest pull page a client may ask for
	PageBytes    int // pull page byte budget
}

// DefaultLimits are the documented defaults.
var DefaultLimits = Limits{
	MaxMutations: 500,
	MaxDocBytes:  64 << 10,
	PageSize:     100,
	MaxPageSize:  1000,
	PageBytes:    1 << 20,
}

// Engine implements push and pull over a Store. It is safe for concurrent use.
type Engine struct {
	store    Store
	dir      Directory // nil: every caller is who its token says
	schemas  Validator
	limits   Limits
	now      func() time.Time
	checkKey []byte
	rules    Rules
	hooks    []Hook    // after-push hooks (hooks.go)
	effects  []Effects // effects committed with a device's push (effects.go)
}

// Config wires an Engine.
type Config struct {
	Store   Store
	Schemas Validator
	// Rules are what the documents mean (rules.go): package fieldsales.
	Rules Rules
	// Directory is who users are (roles, teams, disabled); nil trusts the
	// roles in tokens.
	Directory Directory
	Limits    Limits           // zero fields take the defaults
	Now       func() time.Time // injected clock; time.Now when nil
}

// checkpointSecret names the store secret that signs pull checkpoints. It
// lives in the store so every server instance on one database signs and
// verifies the same checkpoints.
const checkpointSecret = "checkpoint-hmac"

// New returns an engine. It loads the checkpoint key from the store.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Store == nil || cfg.Schemas == nil || cfg.Rules == nil {
		return nil, fmt.Errorf("sync: engine needs a store, schemas and rules")
	}
	key, err := cfg.Store.Secret(ctx, checkpointSecret, 32)
	if err != nil {
		return nil, fmt.Errorf("sync: load checkpoint key: %w", err)
	}
	l := cfg.Limits
	d := DefaultLimits
	if l.MaxMutations <= 0 {
		l.MaxMutations = d.MaxMutations
	}
	if l.MaxDocBytes <= 0 {
		l.MaxDocBytes = d.MaxDocBytes
	}
	if l.MaxPageSize <= 0 {
		l.MaxPageSize = d.MaxPageSize
	}
	if l.PageSize <= 0 {
		l.PageSize = min(d.PageSize, l.MaxPageSize)
	}
	if l.PageBytes <= 0 {
		l.PageBytes = d.PageBytes
	}
	if l.PageSize > l.MaxPageSize {
		return nil, fmt.Errorf("sync: page size %d exceeds the maximum page size %d", l.PageSize, l.MaxPageSize)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Engine{store: cfg.Store, dir: cfg.Directory, schemas: cfg.Schemas, rules: cfg.Rules, limits: l, now: now,
		checkKey: key}, nil
}

// Limits returns the limits in force.
func (e *Engine) Limits() Limits { return e.limits }

// PushRequest is a decoded push.
type PushRequest struct {
	DeviceID  string     `json:"device_id"`
	Mutations []Mutation `json:"mutations"`
	// DeviceTime is the device's clock when it sent the push (RFC 3339;
	// optional): the server corrects the visit times the push carries by
	// the difference to its own clock (docs/workflows.md, "Visits").
	DeviceTime string `json:"device_time,omitempty"`
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)

// Push applies a batch of mutations for actor and returns one outcome per
// mutation, in order. Whole-request problems (no device id, too many
// mutations) are returned as errors and change nothing.
func (e *Engine) Push(ctx context.Context, actor Actor, req PushRequest) ([]Outcome, error) {
	if !idPattern.MatchString(req.DeviceID) {
		return nil, Errorf(KindInvalid, CodeInvalidRequest, "/device_id", "device_id must be 1-128 characters of A-Z a-z 0-9 _ . : -")
	}
	if len(req.Mutations) > e.limits.MaxMutations {
		return nil, Errorf(KindTooLarge, CodeTooManyMutations, "/mutations",
			"a push may carry at most %d mutations, got %d", e.limits.MaxMutations, len(req.Mutations))
	}
	var deviceTime time.Time
	if req.DeviceTime != "" {
		t, err := time.Parse(time.RFC3339Nano, req.DeviceTime)
		if err != nil {
			return nil, Errorf(KindInvalid, CodeInvalidRequest, "/device_time",
				"device_time must be an RFC 3339 time such as 2026-12-01T09:00:00.000+01:00")
		}
		deviceTime = t
	}
	acc, err := e.accessOf(ctx, actor)
	if err != nil {
		return nil, err
	}
	acc.deviceTime = deviceTime
	return e.push(ctx, acc, req.DeviceID, req.Mutations, nil)
}

// push runs a batch as acc. trusted marks the server's own writes (Upsert
// and restamps): they may set read-only fields and bypass scope checks, and
// they recompute scope keys of whatever they touch.
func (e *Engine) push(ctx context.Context, acc *access, device string, muts []Mutation, trusted *trust) ([]Outcome, error) {
	in := e.screen(acc, muts, trusted)
	if len(in.pass) == 0 {
		return answerRepeats(muts, in.outcomes, in.repeats), nil
	}
	res, plans, err := e.readBefore(ctx, acc, in, trusted)
	if err != nil {
		return nil, err
	}
	// Field history names the writer by user and device together: two
	// users sharing one tablet must still see each other's edits as
	// concurrent.
	writer := acc.actor.User + "/" + device
	pass, pre := in.pass, in.pre
	fx := newEffects()
	batch := PushBatch{Actor: acc.actor, Device: device, Mutations: pass, Parents: res.wanted, Snapshot: res.snapshot}
	var run *effectRun // effects.go
	if len(plans) > 0 {
		run = newEffectRun(e, plans, len(pass), fx, res)
		batch.Then = run.then
	}
	decided := make([]bool, len(pass)) // false after the push: answered from the record
	decide := func(i int, cur *Document) (*Document, Outcome) {
		if i >= len(pass) {
			return run.decide(i, cur)
		}
		m := &pass[i]
		if m.Op == OpCreate && cur != nil && cur.Owner == acc.actor.User && cur.OriginDevice == device && cur.OriginMutation == m.ID {
			// A retry of the create that made cur: its outcome, as recorded
			// by the document's origin.
			decided[i] = false
			return nil, Outcome{MutationID: m.ID, Status: StatusApplied, Version: 1}
		}
		decided[i] = true
		if trusted != nil && trusted.decide != nil {
			return trusted.decide(i, cur, res)
		}
		if trusted != nil && trusted.guard != nil {
			// A server write's precondition, checked in the atomic unit.
			if out, stop := trusted.guard(m, cur); stop {
				return nil, out
			}
		}
		next, out := e.decide(acc, writer, m, pre[i], cur, res, fx, trusted != nil)
		if next != nil && cur == nil {
			next.OriginDevice, next.OriginMutation = device, m.ID
		}
		return next, out
	}
	got, err := e.store.Push(ctx, batch, decide)
	if err != nil {
		return nil, err
	}
	if run != nil {
		// Written with the push, in its Then rounds.
		fx.grants = map[DocRef][]string{}
	}
	if len(got) != len(pass) {
		return nil, fmt.Errorf("sync: store returned %d outcomes for %d mutations", len(got), len(pass))
	}
	for j, o := range got {
		if !decided[j] && trusted == nil {
			o = replayed(o)
		}
		if pass[j].bad != nil && o.Status == StatusRejected {
			o.Index = &pass[j].index
		}
		in.outcomes[in.passIdx[j]] = o
		if !decided[j] && trusted == nil && (o.Status == StatusApplied || o.Status == StatusMerged) {
			fx.replay(e.rules, &pass[j])
		}
	}
	if err := e.settle(ctx, acc.actor.Org, fx); err != nil {
		return nil, err
	}
	if trusted == nil {
		if err := e.afterPush(ctx, acc.actor, pass, got); err != nil {
			return nil, err
		}
	}
	return answerRepeats(muts, in.outcomes, in.repeats), nil
}

// screened is a batch after the checks that need no store state.
type screened struct {
	outcomes []Outcome   // by position in the request; those answered already are set
	pass     []Mutation  // the mutations that go to the store
	pre      []*prepared // parallel to pass
	passIdx  []int       // parallel to pass: position in the request
	repeats  map[int]int // index of a repeated mutation id -> index of its first copy
}

// screen runs the structural checks and create validation, which need no
// store state, outside the store's write lock. Mutations that fail them are
// answered without reaching the store: without a valid mutation id there is
// nothing to record, and the same bytes always earn the same answer. A
// mutation id repeated in the batch is one mutation: its first copy.
func (e *Engine) screen(acc *access, muts []Mutation, trusted *trust) screened {
	in := screened{outcomes: make([]Outcome, len(muts)), repeats: map[int]int{}}
	var preps []*prepared
	var errs []error
	if trusted != nil && trusted.decide != nil {
		// A restamp carries no payload: its decision is all it does.
		preps, errs = make([]*prepared, len(muts)), make([]error, len(muts))
		for i := range preps {
			preps[i] = &prepared{}
		}
	} else {
		preps, errs = e.prepareAll(acc.actor, muts, trusted != nil)
	}
	first := map[string]int{}
	for i := range muts {
		m := &muts[i]
		if j, ok := first[m.ID]; ok && idPattern.MatchString(m.ID) {
			in.repeats[i] = j
			continue
		}
		first[m.ID] = i
		p, err := preps[i], errs[i]
		if err != nil {
			if !idPattern.MatchString(m.ID) {
				in.outcomes[i] = reject(m.ID, err)
				if m.bad != nil {
					in.outcomes[i].Index = &m.index
				}
				continue
			}
			// A mutation with a valid id is decided inside the store so that
			// a retry of an id that was once applied still returns the
			// recorded outcome.
			p = &prepared{err: err}
		}
		in.pre = append(in.pre, p)
		in.pass = append(in.pass, *m)
		in.passIdx = append(in.passIdx, i)
	}
	return in
}

// readBefore reads what the batch's decisions need, before the store's
// atomic unit: the effects' plans (effects.go) and the rules' read
// (Rules.Begin). It lists the parents the documents hang off, which the
// store reads inside its atomic unit (PushBatch.Parents).
func (e *Engine) readBefore(ctx context.Context, acc *access, in screened, trusted *trust) (*resolution, []plannedEffects, error) {
	var plans []plannedEffects
	switch {
	case trusted == nil && len(e.effects) > 0:
		var err error
		if plans, err = e.prepareEffects(ctx, acc, in.pass); err != nil {
			return nil, nil, err
		}
	case trusted != nil && trusted.plan != nil:
		plans = []plannedEffects{planned(acc.actor.Org, trusted.plan)}
	}
	var parents []DocRef
	for _, p := range in.pre {
		if p.body != nil {
			if ref, ok := e.rules.Parent(p.coll, p.body); ok {
				parents = append(parents, ref)
			}
		}
	}
	if trusted != nil {
		parents = append(parents, trusted.parents...)
	}
	for _, p := range plans {
		// What the plans will write hangs off parents too.
		parents = append(parents, e.parentsOf(p.plan.Read())...)
	}
	res := newResolution(parents)
	if trusted != nil && trusted.decide != nil {
		return res, plans, nil // a restamp: no rules to apply
	}
	info := BatchInfo{Actor: acc.actor, Reports: acc.reports, Server: trusted != nil,
		DeviceTime: acc.deviceTime, Received: e.now()}
	for i, p := range in.pre {
		if p.err == nil {
			info.Writes = append(info.Writes, Pending{Mutation: &in.pass[i], Body: p.body, Fields: p.fields})
		}
	}
	var err error
	if res.batch, err = e.rules.Begin(ctx, reader{e, acc.actor.Org}, info); err != nil {
		return nil, nil, err
	}
	if plan, ok := res.batch.(EffectPlan); ok && trusted == nil {
		plans = append(plans, planned(acc.actor.Org, plan))
	}
	return res, plans, nil
}

// parentsOf lists the parents docs hang off.
func (e *Engine) parentsOf(docs []*Document) []DocRef {
	var out []DocRef
	for _, d := range docs {
		if d.Deleted {
			continue
		}
		body, err := decodeObject(d.Body)
		if err != nil {
			continue
		}
		if ref, ok := e.rules.Parent(d.Collection, body); ok {
			out = append(out, ref)
		}
	}
	return out
}

// answerRepeats answers every repeated copy of a mutation id as a retry of
// its first copy.
func answerRepeats(muts []Mutation, outcomes []Outcome, repeats map[int]int) []Outcome {
	for i, j := range repeats {
		o := replayed(outcomes[j])
		o.Index = nil
		if muts[i].bad != nil && o.Status == StatusRejected {
			o.Index = &muts[i].index
		}
		outcomes[i] = o
	}
	return outcomes
}

// replayed is the answer to a mutation already decided: never a body, nor a
// kept value (Outcome.Replayed).
func replayed(o Outcome) Outcome {
	o.Doc, o.Replayed = nil, true
	if len(o.Conflicts) > 0 {
		cs := make([]Conflict, len(o.Conflicts))
		for i, c := range o.Conflicts {
			cs[i] = Conflict{Field: c.Field, Yours: c.Yours, KeptVersion: c.KeptVersion}
		}
		o.Conflicts = cs
	}
	return o
}

// prepareAll prepares every mutation, on all cores for a large batch:
// decoding and validating documents is most of a push's CPU outside the
// store, and none of it depends on the others.
func (e *Engine) prepareAll(actor Actor, muts []Mutation, trusted bool) ([]*prepared, []error) {
	preps := make([]*prepared, len(muts))
	errs := make([]error, len(muts))
	work := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			preps[i], errs[i] = e.prepare(actor, &muts[i], trusted)
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(muts)/parallelPrepareMin)
	if workers < 2 {
		work(0, len(muts))
		return preps, errs
	}
	var wg sync.WaitGroup
	chunk := (len(muts) + workers - 1) / workers
	for lo := 0; lo < len(muts); lo += chunk {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			work(lo, hi)
		}(lo, min(lo+chunk, len(muts)))
	}
	wg.Wait()
	return preps, errs
}

// parallelPrepareMin is the smallest share of a batch worth a goroutine.
const parallelPrepareMin = 16

func reject(mutationID string, err error) Outcome {
	var e *Error
	if errors.As(err, &e) {
		return Outcome{MutationID: mutationID, Status: StatusRejected, Error: e.Body()}
	}
	return Outcome{MutationID: mutationID, Status: StatusRejected,
		Error: &ErrorBody{Code: CodeInternal, Message: "internal error"}}
}

// PullRequest is a decoded pull.
type PullRequest struct {
	Checkpoint string
	Limit      int // 0 means the default page size
}

// PullResult is one page of the change feed.
type PullResult struct {
	Changes    []Change
	Checkpoint string
	HasMore    bool
	// Reset says the caller's read set changed since its checkpoint: this
	// pull starts over, and once it completes the device keeps only what it
	// delivered (docs/access.md).
	Reset bool
	Bytes int // body bytes in the page
}

// Pull returns the next page of changes visible to actor after the checkpoint.
func (e *Engine) Pull(ctx context.Context, actor Actor, req PullRequest) (PullResult, error) {
	limit := req.Limit
	if limit == 0 {
		limit = e.limits.PageSize
	}
	if limit < 1 || limit > e.limits.MaxPageSize {
		return PullResult{}, Errorf(KindInvalid, CodeLimitOutOfRange, "/limit",
			"limit must be between 1 and %d, got %d", e.limits.MaxPageSize, req.Limit)
	}
	acc, err := e.accessOf(ctx, actor)
	if err != nil {
		return PullResult{}, err
	}
	after, read, err := e.openCheckpoint(actor, req.Checkpoint)
	if err != nil {
		return PullResult{}, err
	}
	reset := req.Checkpoint != "" && read != acc.fp
	if reset {
		after = 0
	}
	q := PullQuery{Org: actor.Org, Scopes: acc.read, After: after, Limit: limit, MaxBytes: e.limits.PageBytes}
	pg, err := e.store.Pull(ctx, q)
	if err == nil && pg.Compacted {
		// Away longer than the store keeps deletes and evictions: start
		// over, and keep only what that delivers (retention.go).
		reset, after, q.After = true, 0, 0
		pg, err = e.store.Pull(ctx, q)
	}
	if err != nil {
		return PullResult{}, err
	}
	n := 0
	for _, c := range pg.Changes {
		n += len(c.Body)
	}
	// The checkpoint moves to how far the page reaches, past its last change
	// when the scopes were quiet: a device of a quiet scope keeps up with the
	// history the store retains instead of being reset (retention.go).
	last := max(after, pg.Through)
	return PullResult{Changes: pg.Changes, HasMore: pg.More, Checkpoint: e.sealCheckpoint(actor, last, acc.fp), Bytes: n, Reset: reset}, nil
}

// compactJSON returns raw without insignificant whitespace.
func compactJSON(raw []byte) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}
