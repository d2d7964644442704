package server

import (
	"context"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/kpi"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// KPIs computes the field-sales KPIs (kpi.Service).
type KPIs interface {
	Report(ctx context.Context, actor engine.Actor, q kpi.Query) (*kpi.Report, error)
}

// kpiRoutes registers GET /v1/kpis?rep=ID|team=ID&from=YYYY-MM-DD&to=YYYY-MM-DD
// (docs/workflows.md, "KPIs").
func (s *Server) kpiRoutes(r fiber.Router) {
	r.Get("/kpis", s.authenticate, s.kpis)
}

func (s *Server) kpis(c *fiber.Ctx) error {
	// strings.Clone: query values live in Fiber's reused buffers.
	q := kpi.Query{
		Rep: strings.Clone(c.Query("rep")), Team: strings.Clone(c.Query("team")),
		From: strings.Clone(c.Query("from")), To: strings.Clone(c.Query("to")),
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CallTimeout)
	defer cancel()
	rep, err := s.cfg.KPIs.Report(ctx, actorOf(c), q)
	if err != nil {
		return err
	}
	return c.JSON(rep)
}
