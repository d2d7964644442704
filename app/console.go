package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/fieldsync/fieldsync/console"
	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/kpi"
	"github.com/fieldsync/fieldsync/server"
	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/workflow"
)

// ConsoleConfig configure the web console at /console/ (docs/console.md).
type ConsoleConfig struct {
	SecureCookie    bool
	SessionTTL      time.Duration
	Poll            time.Duration
	Tiles           string
	TileAttribution string
}

// startConsole builds the console on the identity and workflow services the
// API uses; without workflows there is no console (nil).
func startConsole(ctx context.Context, f ConsoleConfig, store engine.Store, ids *identity.Service, wf *workflow.Service,
	kpis *kpi.Service, sync console.Syncer, assign console.Assigner, devices console.PushDevices, files console.Files, hooks console.Webhooks, radius float64, now func() time.Time, log *slog.Logger) (server.Console, error) {
	if wf == nil {
		return nil, nil
	}
	// Shared by every instance on the store, so a console session survives
	// being served by another instance.
	key, err := store.Secret(ctx, "console-cookie", 32)
	if err != nil {
		return nil, err
	}
	return console.New(console.Config{Accounts: ids, Admin: ids, PushDevices: devices, Workflow: wf, ServiceAccounts: ids, Webhooks: hooks, KPIs: kpi.NewReviews(kpis, store), Sync: sync, Assign: assign, Files: files, VisitRadius: radius, Key: key, SessionTTL: f.SessionTTL,
		SecureCookie: f.SecureCookie, PollInterval: f.Poll, Tiles: f.Tiles, TileAttribution: f.TileAttribution, Logger: log, Now: now})
}
