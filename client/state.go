package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// State is everything a device keeps between runs. A LocalStore saves it as
// one unit, so a crash leaves either the state before a change or the state
// after it, never a mix (for example a pull checkpoint ahead of its data).
type State struct {
	// DeviceID is the device the queue belongs to; a store is never reused
	// under another device id (its queued mutations would be applied twice).
	DeviceID string `json:"device_id"`
	// MutationPrefix and MutationSeq make mutation ids: the n-th id issued
	// by this store is "<prefix>-<n>". The prefix is random per store, so an
	// app reinstalled with the same device id and an empty store never
	// reuses an id the server has recorded.
	MutationPrefix string `json:"mutation_prefix"`
	MutationSeq    uint64 `json:"mutation_seq"`
	// Checkpoint is the pull position; it is saved with the page it ends.
	Checkpoint string `json:"checkpoint"`
	// Docs holds the server copy of each document in the device's scope:
	// collection -> id -> the version and body the server sent last.
	Docs map[string]map[string]Doc `json:"docs"`
	// Queue is the pending mutations, in the order they were made.
	Queue []Pending `json:"queue"`
	// Acked is the mutations the server applied whose resulting document
	// the device has not pulled yet. They stay visible (and give the
	// base_version of later edits) until a pull catches up with them.
	Acked []Acked `json:"acked"`
	// Files is the attachments waiting to be uploaded (files.go), in the
	// order they were attached.
	Files []PendingFile `json:"files,omitempty"`
}

// Doc is the server copy of one document.
type Doc struct {
	Version int64           `json:"version"`
	Doc     json.RawMessage `json:"doc"`
}

// Pending is a mutation waiting to be pushed.
type Pending struct {
	Mutation engine.Mutation `json:"mutation"`
	// Attempts counts the pushes that carried it. It is informational: an
	// increment reaches the store with the next saved change.
	Attempts int `json:"attempts"`
}

// Acked is a mutation the server stored as Version.
type Acked struct {
	Mutation engine.Mutation `json:"mutation"`
	Version  int64           `json:"version"`
}

// LocalStore persists a device's State. Save must be atomic: after a crash,
// Load returns the last State whose Save returned nil, in full. One Client at
// a time may use a store.
type LocalStore interface {
	Load() (State, error)
	Save(State) error
}

// stateFormat versions the encoding of State in a store.
const stateFormat = 1

type envelope struct {
	Format int   `json:"format"`
	State  State `json:"state"`
}

func encodeState(s State) ([]byte, error) {
	return json.Marshal(envelope{Format: stateFormat, State: s})
}

func decodeState(raw []byte) (State, error) {
	var e envelope
	if err := json.Unmarshal(raw, &e); err != nil {
		return State{}, fmt.Errorf("client: decode state: %w", err)
	}
	if e.Format != stateFormat {
		return State{}, fmt.Errorf("client: state format %d is not supported (want %d)", e.Format, stateFormat)
	}
	return e.State, nil
}

// MemoryStore keeps the state in memory, encoded as the file store would
// write it, so a Load never shares memory with the Client that saved. A new
// Client on the same MemoryStore behaves like an app restart.
type MemoryStore struct {
	mu   sync.Mutex
	data []byte
}

var _ LocalStore = (*MemoryStore)(nil)

// NewMemoryStore returns an empty in-memory store, for tests and load tools.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

// Load returns the last saved state, or an empty State.
func (m *MemoryStore) Load() (State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.data == nil {
		return State{}, nil
	}
	return decodeState(m.data)
}

// Save replaces the stored state.
func (m *MemoryStore) Save(s State) error {
	raw, err := encodeState(s)
	if err != nil {
		return fmt.Errorf("client: encode state: %w", err)
	}
	m.mu.Lock()
	m.data = raw
	m.mu.Unlock()
	return nil
}

// FileStore keeps the state in one JSON file, replaced atomically on every
// Save: the new content goes to a temporary file in the same directory,
// which is synced, renamed over the old file, and the directory synced.
type FileStore struct {
	path string
}

var _ LocalStore = (*FileStore)(nil)

// NewFileStore returns a store for the file at path; the file is created on
// the first Save, and its directory must exist.
func NewFileStore(path string) *FileStore { return &FileStore{path: path} }

// Load reads the state; a missing file is an empty State.
func (f *FileStore) Load() (State, error) {
	raw, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("client: read state: %w", err)
	}
	return decodeState(raw)
}

// Save writes the state atomically and durably.
func (f *FileStore) Save(s State) error {
	raw, err := encodeState(s)
	if err != nil {
		return fmt.Errorf("client: encode state: %w", err)
	}
	dir, base := filepath.Split(f.path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, base+".tmp-*")
	if err != nil {
		return fmt.Errorf("client: save state: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(raw); err != nil {
		return fmt.Errorf("client: save state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("client: save state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("client: save state: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("client: save state: %w", err)
	}
	done = true
	// The rename is durable only once the directory entry is.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("client: save state: sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("client: save state: sync directory: %w", err)
	}
	return nil
}

// The methods below read and change a State; the Client calls them with its
// lock held.

func (s *State) normalize() {
	if s.Docs == nil {
		s.Docs = map[string]map[string]Doc{}
	}
}

func sameDoc(m *engine.Mutation, coll, id string) bool {
	return m.Collection == coll && m.DocID == id
}

// known reports whether the device has ever had anything to do with the
// document: a server copy, an acknowledged or a pending mutation.
func (s *State) known(coll, id string) bool {
	if _, ok := s.Docs[coll][id]; ok {
		return true
	}
	for i := range s.Acked {
		if sameDoc(&s.Acked[i].Mutation, coll, id) {
			return true
		}
	}
	for i := range s.Queue {
		if sameDoc(&s.Queue[i].Mutation, coll, id) {
			return true
		}
	}
	return false
}

// knownVersion is the newest server version of the document the device
// knows of: its server copy or a mutation the server acknowledged.
func (s *State) knownVersion(coll, id string) int64 {
	v := s.Docs[coll][id].Version
	for i := range s.Acked {
		if a := &s.Acked[i]; sameDoc(&a.Mutation, coll, id) {
			v = max(v, a.Version)
		}
	}
	return v
}

// visible returns the document as the user sees it: the server copy, then
// the acknowledged mutations it does not include yet, then the pending ones.
func (s *State) visible(coll, id string) (json.RawMessage, bool) {
	d, ok := s.Docs[coll][id]
	doc := d.Doc
	for i := range s.Acked {
		if a := &s.Acked[i]; sameDoc(&a.Mutation, coll, id) && a.Version > d.Version {
			doc, ok = applyMutation(doc, ok, &a.Mutation)
		}
	}
	for i := range s.Queue {
		if m := &s.Queue[i].Mutation; sameDoc(m, coll, id) {
			doc, ok = applyMutation(doc, ok, m)
		}
	}
	return doc, ok
}

// visibleCollection is visible for every document of a collection.
func (s *State) visibleCollection(coll string) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(s.Docs[coll]))
	for id, d := range s.Docs[coll] {
		out[id] = d.Doc
	}
	apply := func(m *engine.Mutation) {
		cur, ok := out[m.DocID]
		if next, ok := applyMutation(cur, ok, m); ok {
			out[m.DocID] = next
		} else {
			delete(out, m.DocID)
		}
	}
	for i := range s.Acked {
		if a := &s.Acked[i]; a.Mutation.Collection == coll && a.Version > s.Docs[coll][a.Mutation.DocID].Version {
			apply(&a.Mutation)
		}
	}
	for i := range s.Queue {
		if m := &s.Queue[i].Mutation; m.Collection == coll {
			apply(m)
		}
	}
	return out
}

// applyMutation returns the document after m, the way the server would
// apply it without conflicts: a create sets the document, an update merges
// top-level fields (null removes one), a delete removes the document.
func applyMutation(doc json.RawMessage, exists bool, m *engine.Mutation) (json.RawMessage, bool) {
	switch m.Op {
	case engine.OpCreate:
		return m.Doc, true
	case engine.OpDelete:
		return nil, false
	case engine.OpUpdate:
		if !exists {
			return nil, false
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(doc, &obj); err != nil || obj == nil {
			obj = map[string]json.RawMessage{}
		}
		for k, v := range m.Fields {
			if isNull(v) {
				delete(obj, k)
			} else {
				obj[k] = v
			}
		}
		out, err := json.Marshal(obj)
		if err != nil {
			return doc, true
		}
		return out, true
	}
	return doc, exists
}

func isNull(v json.RawMessage) bool {
	return len(v) == 0 || bytes.Equal(bytes.TrimSpace(v), []byte("null"))
}

// setDoc stores a server copy.
func (s *State) setDoc(coll, id string, d Doc) {
	m := s.Docs[coll]
	if m == nil {
		m = map[string]Doc{}
		s.Docs[coll] = m
	}
	m[id] = d
}

// removeDoc drops a server copy.
func (s *State) removeDoc(coll, id string) {
	if m := s.Docs[coll]; m != nil {
		delete(m, id)
		if len(m) == 0 {
			delete(s.Docs, coll)
		}
	}
}

// pruneAcked drops the acknowledged mutations of a document that a server
// copy at version upTo already includes (all of them when upTo < 0).
func (s *State) pruneAcked(coll, id string, upTo int64) {
	kept := s.Acked[:0]
	for _, a := range s.Acked {
		if sameDoc(&a.Mutation, coll, id) && (upTo < 0 || a.Version <= upTo) {
			continue
		}
		kept = append(kept, a)
	}
	clear(s.Acked[len(kept):])
	s.Acked = kept
}
