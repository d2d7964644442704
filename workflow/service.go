package workflow

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// StoredMatrix is one version of an organisation's matrix, as replaced
// through the admin API.
type StoredMatrix struct {
	Org     string
	Version int64 // 1, 2, ...; version 0 is the embedded default
	Raw     []byte
	By      string // admin who put it
	Created time.Time
}

// MatrixStore keeps every version of every organisation's matrix (old
// orders keep routing by the version they started with) and the
// organisations the overdue sweep visits. The sqlite and mongodb packages
// implement it.
type MatrixStore interface {
	// LatestMatrix returns the organisation's newest version; found is
	// false when it never replaced the default.
	LatestMatrix(ctx context.Context, org string) (m StoredMatrix, found bool, err error)
	// MatrixVersion returns one version; found is false when it is missing.
	MatrixVersion(ctx context.Context, org string, version int64) (m StoredMatrix, found bool, err error)
	// InsertMatrix stores a new version; a version that exists answers an
	// error of kind conflict (two admins replacing at once: one wins).
	InsertMatrix(ctx context.Context, m StoredMatrix) error
	// NoteWorkflowOrg records, idempotently, that org has follow-ups.
	NoteWorkflowOrg(ctx context.Context, org string) error
	// WorkflowOrgs lists the organisations NoteWorkflowOrg recorded.
	WorkflowOrgs(ctx context.Context) ([]string, error)
}

// Docs reads committed documents and scope feeds (the sync store).
type Docs interface {
	Get(ctx context.Context, org string, refs []engine.DocRef) (map[engine.DocRef]*engine.Document, error)
	Pull(ctx context.Context, q engine.PullQuery) (engine.PullPage, error)
}

// Writer makes the server's trusted writes (the sync engine's Upsert).
type Writer interface {
	Upsert(ctx context.Context, actor engine.Actor, source string, docs []engine.UpsertDoc) ([]engine.Outcome, error)
	// UpsertWith is Upsert whose effects (plan) commit in the same write.
	UpsertWith(ctx context.Context, actor engine.Actor, source string, docs []engine.UpsertDoc, plan engine.EffectPlan) ([]engine.Outcome, error)
	// Grant makes documents carry scope keys (engine.Engine.Grant).
	Grant(ctx context.Context, org string, grants map[engine.DocRef][]string) error
}

// Orgs says which roles an organisation has.
type Orgs interface {
	Org(ctx context.Context, id string) (*identity.Org, error)
}

// Config wires a Service.
type Config struct {
	Writer Writer
	Docs   Docs
	Store  MatrixStore
	// Orgs validates replaced matrices against the organisation's roles;
	// nil: the built-in roles only.
	Orgs Orgs
	// Directory gives API callers their current roles; nil trusts tokens.
	Directory engine.Directory
	// Schemas checks that the result fields a completion copies onto its
	// order (an ERP number) fit the order's schema, so that a completion
	// the order cannot take is refused, not done with the order left
	// behind; nil: unchecked.
	Schemas Validator
	Now     func() time.Time // injected clock; time.Now when nil
}

// Validator validates a document against its collection's schema (package
// schemas).
type Validator interface {
	Validate(collection string, doc map[string]any) *engine.Violation
}

// Service is the workflow: the sync engine's effects and after-push hook, the
// follow-up API's operations, the matrix admin and the overdue sweep.
type Service struct {
	cfg Config
	def *Matrix

	mu     sync.Mutex
	parsed map[string]*Matrix    // org/version -> matrix
	noted  map[string]bool       // organisations recorded in the store
	views  map[string]*indexView // sweep.go: org and index key -> what the sweep read
}

// defaultVersion is the matrix_version of the embedded default.
const defaultVersion = "0"

// New validates the embedded default matrix against the built-in roles and
// returns the service.
func New(cfg Config) (*Service, error) {
	if cfg.Writer == nil || cfg.Docs == nil || cfg.Store == nil {
		return nil, fmt.Errorf("workflow: a writer, a document reader and a matrix store are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	def, err := Parse(defaultMatrix, (&identity.Org{}).KnownRole)
	if err != nil {
		return nil, fmt.Errorf("workflow: the embedded default matrix: %w", err)
	}
	return &Service{cfg: cfg, def: def, parsed: map[string]*Matrix{}, noted: map[string]bool{}}, nil
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// current returns the matrix in force for new orders of org and its version.
func (s *Service) current(ctx context.Context, org string) (*Matrix, string, error) {
	sm, found, err := s.cfg.Store.LatestMatrix(ctx, org)
	if err != nil || !found {
		return s.def, defaultVersion, err
	}
	m, err := s.parse(sm)
	return m, strconv.FormatInt(sm.Version, 10), err
}

// version returns a version of org's matrix that routed earlier work.
func (s *Service) version(ctx context.Context, org, version string) (*Matrix, error) {
	n, err := strconv.ParseInt(version, 10, 64)
	if err != nil || n <= 0 {
		return s.def, nil
	}
	sm, found, err := s.cfg.Store.MatrixVersion(ctx, org, n)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("workflow: %s has no matrix version %d", org, n)
	}
	return s.parse(sm)
}

// parse decodes a stored version once per process. It was validated when
// it was put; roles the organisation dropped since must not stop routing.
func (s *Service) parse(sm StoredMatrix) (*Matrix, error) {
	key := sm.Org + "/" + strconv.FormatInt(sm.Version, 10)
	s.mu.Lock()
	m := s.parsed[key]
	s.mu.Unlock()
	if m != nil {
		return m, nil
	}
	m, err := Parse(sm.Raw, func(string) bool { return true })
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.parsed[key] = m
	s.mu.Unlock()
	return m, nil
}

// Matrix returns the JSON of org's matrix in force and its version.
func (s *Service) Matrix(ctx context.Context, org string) ([]byte, string, error) {
	sm, found, err := s.cfg.Store.LatestMatrix(ctx, org)
	if err != nil {
		return nil, "", err
	}
	if !found {
		return DefaultMatrix(), defaultVersion, nil
	}
	return sm.Raw, strconv.FormatInt(sm.Version, 10), nil
}

// PutMatrix validates raw against the caller's organisation and stores it
// as the next version; orders submitted from now on follow it.
func (s *Service) PutMatrix(ctx context.Context, actor engine.Actor, raw []byte) (string, error) {
	org := &identity.Org{ID: actor.Org}
	if s.cfg.Orgs != nil {
		o, err := s.cfg.Orgs.Org(ctx, actor.Org)
		switch {
		case err == nil:
			org = o
		case engine.ErrorKind(err) != engine.KindNotFound:
			return "", err
		}
	}
	if _, err := Parse(raw, org.KnownRole); err != nil {
		return "", err
	}
	latest, _, err := s.cfg.Store.LatestMatrix(ctx, actor.Org)
	if err != nil {
		return "", err
	}
	// Stored as the admin sent it (Parse accepted it), so GET shows their
	// document back, layout included.
	next := StoredMatrix{Org: actor.Org, Version: latest.Version + 1, Raw: bytes.Clone(raw), By: actor.User, Created: s.now()}
	if err := s.cfg.Store.InsertMatrix(ctx, next); err != nil {
		if engine.ErrorKind(err) == engine.KindConflict {
			return "", engine.Errorf(engine.KindConflict, CodeMatrixChanged, "",
				"another replacement of the matrix landed first; read it again and retry")
		}
		return "", err
	}
	return strconv.FormatInt(next.Version, 10), nil
}

// CodeMatrixChanged answers a replacement that raced another one.
const CodeMatrixChanged = "matrix_changed"

// system is who the workflow writes as.
func system(org string) engine.Actor {
	return engine.Actor{Org: org, User: "workflow", Roles: []string{fieldsales.RoleAdmin}}
}

// sourceWorkflow names the workflow's writes in field history.
const sourceWorkflow = "workflow"

// noteOrg records org for the sweep, once per process.
func (s *Service) noteOrg(ctx context.Context, org string) error {
	s.mu.Lock()
	done := s.noted[org]
	s.mu.Unlock()
	if done {
		return nil
	}
	if err := s.cfg.Store.NoteWorkflowOrg(ctx, org); err != nil {
		return err
	}
	s.mu.Lock()
	s.noted[org] = true
	s.mu.Unlock()
	return nil
}

// raw marshals a value for an UpsertDoc field.
func raw(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain values reach here
	}
	return b
}

// stamp formats a time as the documents store it.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// decode returns a document's body as a map (numbers as float64).
func decode(d *engine.Document) map[string]any {
	var m map[string]any
	json.Unmarshal(d.Body, &m)
	if m == nil {
		m = map[string]any{}
	}
	return m
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}
