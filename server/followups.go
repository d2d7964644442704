package server

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/workflow"
)

// Workflow is what the follow-up API and the matrix admin endpoints call
// (package workflow implements it). Every method takes the caller: the
// organisation comes from the token, and the workflow checks roles.
type Workflow interface {
	List(ctx context.Context, caller engine.Actor, q workflow.ListQuery) (workflow.Page, error)
	Act(ctx context.Context, caller engine.Actor, id string, act workflow.Action) (*workflow.FollowUp, error)
	Matrix(ctx context.Context, org string) (raw []byte, version string, err error)
	PutMatrix(ctx context.Context, caller engine.Actor, raw []byte) (version string, err error)
}

// workflowRoutes registers the follow-up queues (back-office roles and
// admins) and the matrix endpoints (admins only).
func (s *Server) workflowRoutes(v1 fiber.Router) {
	limit := s.rateLimit()
	v1.Get("/followups", s.authenticate, limit, s.listFollowUps)
	for _, act := range []string{workflow.ActClaim, workflow.ActStart, workflow.ActBlock, workflow.ActComplete} {
		v1.Post("/followups/:id/"+act, s.authenticate, limit, s.actOnFollowUp(act))
	}
	v1.Get("/admin/matrix", s.authenticate, s.requireAdmin, s.getMatrix)
	v1.Put("/admin/matrix", s.authenticate, s.requireAdmin, s.putMatrix)
}

func (s *Server) listFollowUps(c *fiber.Ctx) error {
	q := workflow.ListQuery{Role: strings.Clone(c.Query("role")), Status: strings.Clone(c.Query("status")),
		After: strings.Clone(c.Query("after"))}
	if a := c.Query("actionable"); a != "" {
		v, err := strconv.ParseBool(a)
		if err != nil {
			return engine.Errorf(engine.KindInvalid, engine.CodeInvalidRequest, "/actionable", "actionable must be true or false")
		}
		q.Actionable = &v
	}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > workflow.MaxListLimit {
			return engine.Errorf(engine.KindInvalid, engine.CodeLimitOutOfRange, "/limit", "limit must be 1 to %d", workflow.MaxListLimit)
		}
		q.Limit = n
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	page, err := s.cfg.Workflow.List(ctx, actorOf(c), q)
	if err != nil {
		return err
	}
	return c.JSON(page)
}

// actionRequest is the body of an action; claim and start need none.
type actionRequest struct {
	Reason string         `json:"reason"`
	Note   string         `json:"note"`
	Result map[string]any `json:"result"`
}

func (s *Server) actOnFollowUp(kind string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req actionRequest
		if len(bytes.TrimSpace(c.Body())) > 0 {
			if err := decodeStrict(c.Body(), &req); err != nil {
				return err
			}
		}
		ctx, cancel := s.callCtx()
		defer cancel()
		fu, err := s.cfg.Workflow.Act(ctx, actorOf(c), param(c, "id"),
			workflow.Action{Kind: kind, Reason: req.Reason, Note: req.Note, Result: req.Result})
		if err != nil {
			return err
		}
		return c.JSON(fu)
	}
}

type matrixReply struct {
	Version string          `json:"version"`
	Matrix  json.RawMessage `json:"matrix,omitempty"`
}

func (s *Server) getMatrix(c *fiber.Ctx) error {
	ctx, cancel := s.callCtx()
	defer cancel()
	raw, v, err := s.cfg.Workflow.Matrix(ctx, actorOf(c).Org)
	if err != nil {
		return err
	}
	return c.JSON(matrixReply{Version: v, Matrix: raw})
}

// putMatrix replaces the organisation's matrix: the body is the matrix
// document itself (docs/workflows.md).
func (s *Server) putMatrix(c *fiber.Ctx) error {
	body := bytes.Clone(c.Body())
	ctx, cancel := s.callCtx()
	defer cancel()
	v, err := s.cfg.Workflow.PutMatrix(ctx, actorOf(c), body)
	if err != nil {
		return err
	}
	return c.JSON(matrixReply{Version: v})
}
