package identity

import (
	"context"
	"slices"
	"strings"

	"github.com/fieldsync/fieldsync/sync/engine"
)

var _ engine.Directory = (*Service)(nil)

// Member implements the sync engine's Directory: the user's roles, whether
// they are disabled and, for a manager, the members of the teams they lead.
// It reads the store on every call, so a change made through any server
// instance takes effect at once everywhere.
func (s *Service) Member(ctx context.Context, org, user string) (engine.Member, bool, error) {
	if strings.HasPrefix(user, ServiceAccountPrefix) {
		return s.serviceMember(ctx, org, user) // serviceaccounts.go
	}
	u, err := s.store.User(ctx, org, user)
	if engine.ErrorKind(err) == engine.KindNotFound {
		return engine.Member{}, false, nil
	}
	if err != nil {
		return engine.Member{}, false, err
	}
	m := engine.Member{Roles: u.Roles, Disabled: u.Disabled}
	if !u.HasRole(RoleManager) {
		return m, true, nil
	}
	for _, team := range u.Leads {
		after := ""
		for {
			page, err := s.store.Users(ctx, org, UserFilter{Team: team, After: after, Limit: 1000})
			if err != nil {
				return engine.Member{}, false, err
			}
			for _, r := range page {
				if r.ID != user {
					m.Reports = append(m.Reports, r.ID)
				}
			}
			if len(page) < 1000 {
				break
			}
			after = page[len(page)-1].ID
		}
	}
	slices.Sort(m.Reports)
	m.Reports = slices.Compact(m.Reports)
	return m, true, nil
}
