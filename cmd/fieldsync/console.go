package main

import (
	"context"
	"flag"
	"log/slog"
	"time"

	"github.com/fieldsync/fieldsync/console"
	"github.com/fieldsync/fieldsync/identity"
	"github.com/fieldsync/fieldsync/kpi"
	"github.com/fieldsync/fieldsync/server"
	"github.com/fieldsync/fieldsync/sync/engine"
	"github.com/fieldsync/fieldsync/workflow"
)

// consoleFlags configure the web console at /console/ (docs/console.md).
type consoleFlags struct {
	SecureCookie    bool
	SessionTTL      time.Duration
	Poll            time.Duration
	Tiles           string
	TileAttribution string
}

func (f *consoleFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.SecureCookie, "console-secure-cookie", false, "mark the console's cookies Secure even on plain HTTP (TLS ends at a proxy); requests over TLS always get Secure cookies (env FIELDSYNC_CONSOLE_SECURE_COOKIE)")
	fs.DurationVar(&f.SessionTTL, "console-session-ttl", console.DefaultSessionTTL, "longest a console sign-in lasts (env FIELDSYNC_CONSOLE_SESSION_TTL)")
	fs.DurationVar(&f.Poll, "console-poll", console.DefaultPollInterval, "how often an open queue page refreshes its list (env FIELDSYNC_CONSOLE_POLL)")
	fs.StringVar(&f.Tiles, "console-tiles", "", "map tile URL with {z}, {x} and {y} under the map of a rep's day, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png; empty: a plain background, no request leaves the browser for tiles (env FIELDSYNC_CONSOLE_TILES)")
	fs.StringVar(&f.TileAttribution, "console-tile-attribution", "", "the attribution the tile server requires, shown under the map, e.g. \"© OpenStreetMap contributors\" (env FIELDSYNC_CONSOLE_TILE_ATTRIBUTION)")
}

// startConsole builds the console on the identity and workflow services the
// API uses; without workflows there is no console (nil).
func startConsole(ctx context.Context, f consoleFlags, store engine.Store, ids *identity.Service, wf *workflow.Service,
	kpis *kpi.Service, sync console.Syncer, assign console.Assigner, devices console.PushDevices, files console.Files, radius float64, log *slog.Logger) (server.Console, error) {
	if wf == nil {
		return nil, nil
	}
	// Shared by every instance on the store, so a console session survives
	// being served by another instance.
	key, err := store.Secret(ctx, "console-cookie", 32)
	if err != nil {
		return nil, err
	}
	return console.New(console.Config{Accounts: ids, Admin: ids, PushDevices: devices, Workflow: wf, KPIs: kpi.NewReviews(kpis, store), Sync: sync, Assign: assign, Files: files, VisitRadius: radius, Key: key, SessionTTL: f.SessionTTL,
		SecureCookie: f.SecureCookie, PollInterval: f.Poll, Tiles: f.Tiles, TileAttribution: f.TileAttribution, Logger: log})
}
