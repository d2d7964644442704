package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/client"
	"github.com/fieldsync/fieldsync/fieldsales"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// Documents is what the admin's document endpoints need: the engine's
// server-side writes, and reads of committed documents, to answer a missing
// customer with 404 and to tell created, updated and unchanged apart.
type Documents interface {
	Upsert(ctx context.Context, actor engine.Actor, source string, docs []engine.UpsertDoc) ([]engine.Outcome, error)
	Get(ctx context.Context, org string, refs []engine.DocRef) (map[engine.DocRef]*engine.Document, error)
	Limits() engine.Limits
	// CheckReps is the rule of assigned_reps, the same for a device's push.
	CheckReps(ctx context.Context, org string, reps []string, ptr string, known map[string]string) error
	// Assign is the rule of an assignment (engine.Engine.Assign), the same
	// for the console.
	Assign(ctx context.Context, actor engine.Actor, source, customer string, reps []string, ptr string) (int64, bool, error)
}

// CodeUnknownRep refuses an assignment to someone who is not an enabled rep
// of the caller's organisation.
const CodeUnknownRep = fieldsales.CodeUnknownRep // the engine answers a sync push alike (sync/engine/refs.go)

// Sources of the server-side writes, as field history records them.
const (
	sourceAdmin  = "admin"
	sourceImport = "import"
)

// importable are the collections the document endpoint writes: reference
// data and customers, which exist before any rep's phone does.
var importable = []string{fieldsales.CollCustomers, fieldsales.CollProducts, fieldsales.CollPriceLists}

// Changes a written document went through, in a document result.
const (
	changeCreated   = "created"
	changeUpdated   = "updated"
	changeUnchanged = "unchanged"
)

// documentRoutes registers the customer assignment and document import
// endpoints in the admin group.
func (s *Server) documentRoutes(r fiber.Router) {
	r.Post("/customers/:id/assign", s.assign)
	r.Post("/documents/:collection", s.writeDocuments)
}

type assignRequest struct {
	Reps []string `json:"reps"`
}

type assignReply = client.Assignment

// assign sets a customer's reps. The customer's history moves with it; an
// assignment repeated is a no-op that still re-checks that history.
func (s *Server) assign(c *fiber.Ctx) error {
	var req assignRequest
	if err := decodeStrict(c.Body(), &req); err != nil {
		return err
	}
	if req.Reps == nil {
		return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/reps", "reps is required: an array of user ids ([] unassigns everyone)")
	}
	a, id := actorOf(c), param(c, "id")
	ctx, cancel := s.callCtx()
	defer cancel()
	v, changed, err := s.cfg.Docs.Assign(ctx, a, sourceAdmin, id, req.Reps, "/reps")
	if err != nil {
		return err
	}
	return c.JSON(assignReply{ID: id, Reps: req.Reps, Version: v, Changed: changed})
}

type documentsRequest struct {
	Docs []json.RawMessage `json:"docs"`
}

// documentEntry is one document of a write: created with Fields when
// missing, or has Fields set.
type documentEntry struct {
	ID     string                     `json:"id"`
	Fields map[string]json.RawMessage `json:"fields"`
}

type documentResult = client.DocumentResult

// writeDocuments creates or updates documents of an importable collection
// as the caller (source "import"): one outcome per document, in order.
// Writing what a document already holds changes nothing.
func (s *Server) writeDocuments(c *fiber.Ctx) error {
	coll := param(c, "collection")
	if !slices.Contains(importable, coll) {
		return engine.Errorf(engine.KindInvalid, engine.CodeUnknownCollection, "",
			"documents can be written to %s, not %q", strings.Join(importable, ", "), coll)
	}
	var req documentsRequest
	if err := decodeStrict(c.Body(), &req); err != nil {
		return err
	}
	if req.Docs == nil {
		return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/docs", "docs is required (an array)")
	}
	if max := s.cfg.Docs.Limits().MaxMutations; len(req.Docs) > max {
		return engine.Errorf(engine.KindTooLarge, engine.CodeTooManyMutations, "/docs",
			"a write may carry at most %d documents, got %d", max, len(req.Docs))
	}
	entries := make([]documentEntry, len(req.Docs))
	for i, raw := range req.Docs {
		if err := decodeEntry(raw, &entries[i], fmt.Sprintf("/docs/%d", i)); err != nil {
			return err
		}
	}
	a := actorOf(c)
	ctx, cancel := s.callCtx()
	defer cancel()
	results := make([]documentResult, len(entries))
	var docs []engine.UpsertDoc
	var refs []engine.DocRef
	var idx []int
	known := map[string]string{}
	for i, e := range entries {
		results[i].ID = e.ID
		if len(e.Fields) == 0 {
			results[i].Outcome = rejected(engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/fields",
				"fields must be an object with at least one field"))
			continue
		}
		var reps []string
		if raw, ok := e.Fields["assigned_reps"]; ok && coll == fieldsales.CollCustomers && json.Unmarshal(raw, &reps) == nil {
			// Not an array of strings: the schema says so below.
			if err := s.cfg.Docs.CheckReps(ctx, a.Org, reps, "/fields/assigned_reps", known); err != nil {
				if engine.ErrorKind(err) != engine.KindInvalid {
					return err
				}
				results[i].Outcome = rejected(err)
				continue
			}
		}
		docs = append(docs, engine.UpsertDoc{Collection: coll, ID: e.ID, Fields: e.Fields})
		refs = append(refs, engine.DocRef{Collection: coll, ID: e.ID})
		idx = append(idx, i)
	}
	if len(docs) > 0 {
		before, err := s.cfg.Docs.Get(ctx, a.Org, refs)
		if err != nil {
			return err
		}
		outs, err := s.cfg.Docs.Upsert(ctx, a, sourceImport, docs)
		if err != nil {
			return err
		}
		for j, o := range outs {
			r := &results[idx[j]]
			if o.Error != nil {
				// Creates are checked as a doc, updates as fields; the
				// request named them fields either way.
				if rest, ok := strings.CutPrefix(o.Error.Pointer, "/doc"); ok {
					o.Error.Pointer = "/fields" + rest
				}
			}
			r.Outcome = o
			if o.Status == engine.StatusRejected {
				continue
			}
			switch b := before[refs[j]]; {
			case b == nil:
				r.Change = changeCreated
			case b.Version == o.Version:
				r.Change = changeUnchanged
			default:
				r.Change = changeUpdated
			}
		}
	}
	return c.JSON(struct {
		Results []documentResult `json:"results"`
	}{results})
}

// decodeEntry decodes one document of a write, refusing unknown fields.
func decodeEntry(raw json.RawMessage, e *documentEntry, ptr string) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, ptr, "a document is an object {\"id\", \"fields\"}")
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if k != "id" && k != "fields" {
			return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, ptr+"/"+k, "unknown field %q", k)
		}
	}
	if err := json.Unmarshal(raw, e); err != nil {
		return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, ptr,
			"a document is {\"id\": string, \"fields\": object}")
	}
	return nil
}

func rejected(err error) engine.Outcome {
	var e *engine.Error
	if !errors.As(err, &e) {
		e = &engine.Error{Code: engine.CodeInternal, Message: "internal error"}
	}
	return engine.Outcome{Status: engine.StatusRejected, Error: e.Body()}
}
