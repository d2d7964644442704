package server

import (
	"context"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/fieldsync/fieldsync/client"
	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// KeyVerifier authenticates the API keys of service accounts
// ("Authorization: Bearer fsk_..."): the caller is the account's user id
// with its roles, and goes through every check a user does.
type KeyVerifier interface {
	VerifyKey(ctx context.Context, key string) (engine.Actor, error)
}

// ServiceAccounts is the service account management of the admin API.
// Every method works in the caller's organisation.
type ServiceAccounts interface {
	AddServiceAccount(ctx context.Context, org, name string, roles []string) (*identity.ServiceAccount, string, error)
	ServiceAccount(ctx context.Context, org, id string) (*identity.ServiceAccount, error)
	ServiceAccounts(ctx context.Context, org string) ([]*identity.ServiceAccount, error)
	RotateServiceAccountKey(ctx context.Context, org, id string, overlap time.Duration) (*identity.ServiceAccount, string, error)
	RevokeServiceAccount(ctx context.Context, org, id string) (*identity.ServiceAccount, error)
}

// isAPIKey tells an API key from a JWT (which never starts so).
func isAPIKey(tok string) bool { return strings.HasPrefix(tok, identity.APIKeyPrefix) }

func (s *Server) serviceAccountRoutes(r fiber.Router) {
	r.Get("/service-accounts", s.listServiceAccounts)
	r.Post("/service-accounts", s.addServiceAccount)
	r.Get("/service-accounts/:id", s.getServiceAccount)
	r.Post("/service-accounts/:id/rotate", s.rotateServiceAccount)
	r.Post("/service-accounts/:id/revoke", s.revokeServiceAccount)
}

type serviceAccountJSON = client.ServiceAccount

func toServiceAccountJSON(a *identity.ServiceAccount, key string) serviceAccountJSON {
	out := serviceAccountJSON{ID: a.ID, UserID: a.UserID(), Name: a.Name, Roles: nonNil(a.Roles), Revoked: a.Revoked(),
		Version: a.Version, Created: a.Created.UTC(), Updated: a.Updated.UTC(), Key: key}
	if a.Revoked() {
		t := a.RevokedAt.UTC()
		out.RevokedAt = &t
	}
	if len(a.PrevHash) > 0 && !a.PrevUntil.IsZero() {
		t := a.PrevUntil.UTC()
		out.PrevKeyEnds = &t
	}
	return out
}

func (s *Server) listServiceAccounts(c *fiber.Ctx) error {
	ctx, cancel := s.callCtx()
	defer cancel()
	as, err := s.cfg.ServiceAccounts.ServiceAccounts(ctx, actorOf(c).Org)
	if err != nil {
		return err
	}
	out := struct {
		ServiceAccounts []serviceAccountJSON `json:"service_accounts"`
	}{ServiceAccounts: []serviceAccountJSON{}}
	for _, a := range as {
		out.ServiceAccounts = append(out.ServiceAccounts, toServiceAccountJSON(a, ""))
	}
	return c.JSON(out)
}

func (s *Server) addServiceAccount(c *fiber.Ctx) error {
	var req struct {
		Name  string   `json:"name"`
		Roles []string `json:"roles"`
	}
	if err := decodeStrict(c.Body(), &req); err != nil {
		return err
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	a, key, err := s.cfg.ServiceAccounts.AddServiceAccount(ctx, actorOf(c).Org, req.Name, req.Roles)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(toServiceAccountJSON(a, key))
}

func (s *Server) getServiceAccount(c *fiber.Ctx) error {
	ctx, cancel := s.callCtx()
	defer cancel()
	a, err := s.cfg.ServiceAccounts.ServiceAccount(ctx, actorOf(c).Org, param(c, "id"))
	if err != nil {
		return err
	}
	return c.JSON(toServiceAccountJSON(a, ""))
}

func (s *Server) rotateServiceAccount(c *fiber.Ctx) error {
	req := struct {
		OverlapSeconds *int64 `json:"overlap_seconds"`
	}{}
	if len(c.Body()) > 0 {
		if err := decodeStrict(c.Body(), &req); err != nil {
			return err
		}
	}
	overlap := identity.DefaultKeyOverlap
	if req.OverlapSeconds != nil {
		overlap = time.Duration(*req.OverlapSeconds) * time.Second
		if *req.OverlapSeconds < 0 || overlap > identity.MaxKeyOverlap {
			overlap = -1 // refused by the service with its pointer
		}
	}
	ctx, cancel := s.callCtx()
	defer cancel()
	a, key, err := s.cfg.ServiceAccounts.RotateServiceAccountKey(ctx, actorOf(c).Org, param(c, "id"), overlap)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(toServiceAccountJSON(a, key))
}

func (s *Server) revokeServiceAccount(c *fiber.Ctx) error {
	ctx, cancel := s.callCtx()
	defer cancel()
	a, err := s.cfg.ServiceAccounts.RevokeServiceAccount(ctx, actorOf(c).Org, param(c, "id"))
	if err != nil {
		return err
	}
	return c.JSON(toServiceAccountJSON(a, ""))
}
