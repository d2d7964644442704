package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// UnmarshalJSON decodes a push leniently: each mutation on its own, so one
// malformed mutation (an id sent as a number, a doc that is not an object,
// non-canonical JSON) is answered on its own with invalid_mutation while the
// others are applied. Otherwise a phone with such a mutation queued could
// never push again. Only a body that is not JSON at all, or whose envelope is
// wrong, fails as a whole.
func (r *PushRequest) UnmarshalJSON(b []byte) error {
	var w struct {
		DeviceID   string            `json:"device_id"`
		Mutations  []json.RawMessage `json:"mutations"`
		DeviceTime string            `json:"device_time"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	// The envelope's own keys must be unambiguous too (two "mutations"
	// arrays); the mutations' content is checked per mutation below.
	if err := checkEnvelope(b); err != nil {
		return err
	}
	r.DeviceID, r.DeviceTime, r.Mutations = w.DeviceID, w.DeviceTime, nil
	if w.Mutations == nil {
		return nil
	}
	r.Mutations = make([]Mutation, len(w.Mutations))
	for i, raw := range w.Mutations {
		r.Mutations[i] = decodeMutation(i, raw)
	}
	return nil
}

// mutationFields mirrors Mutation for decoding without recursion.
type mutationFields Mutation

// decodeMutation decodes the i-th mutation of a push. A mutation that cannot
// be decoded keeps whatever mutation_id could be read, so that a retry of an
// id once applied still gets its recorded outcome, and carries the reason.
func decodeMutation(i int, raw json.RawMessage) Mutation {
	var m Mutation
	if err := CheckCanonical(raw, ""); err != nil {
		err.Message = fmt.Sprintf("mutation %d: %s", i, err.Message)
		m.ID = readMutationID(raw)
		m.bad, m.index = err, i
		return m
	}
	if err := json.Unmarshal(raw, (*mutationFields)(&m)); err != nil {
		m = Mutation{ID: readMutationID(raw), bad: malformedMutation(i, err), index: i}
	}
	m.canonical = true
	return m
}

// readMutationID returns the mutation_id of a mutation that did not decode,
// or "" when it has none that is a string.
func readMutationID(raw json.RawMessage) string {
	var probe struct {
		ID json.RawMessage `json:"mutation_id"`
	}
	var id string
	if json.Unmarshal(raw, &probe) == nil && json.Unmarshal(probe.ID, &id) == nil {
		return id
	}
	return ""
}

func malformedMutation(i int, err error) *Error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		ptr := "/" + strings.ReplaceAll(te.Field, ".", "/")
		return invalidMutation(ptr, "mutation %d: %s must be %s, not %s", i, te.Field, jsonTypeName(te.Type.Kind().String()), te.Value)
	}
	return invalidMutation("", "mutation %d must be a JSON object", i)
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "int", "int64":
		return "an integer"
	case "map", "struct":
		return "an object"
	case "slice":
		return "an object or array"
	}
	return kind
}

// checkEnvelope refuses duplicate top-level keys of a push body, without
// looking into their values.
func checkEnvelope(b []byte) error {
	s := canonScanner{b: b, shallow: true}
	s.skipSpace()
	s.value()
	if s.err != nil {
		return s.err
	}
	return nil
}
