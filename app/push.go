package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/api/option"

	"github.com/fieldsync/fieldsync/identity"
	notify "github.com/fieldsync/fieldsync/push"
	"github.com/fieldsync/fieldsync/push/fcm"
	"github.com/fieldsync/fieldsync/server"
	"github.com/fieldsync/fieldsync/sync/engine"
)

// PushConfig configure push notifications (docs/push.md).
type PushConfig struct {
	FCMCredentials string
	FCMProject     string
	FCMEndpoint    string
	MaxAttempts    int
	Batch          int
	Lease          time.Duration
	Retention      time.Duration
	MaxAge         time.Duration
	Poll           time.Duration
	Off            bool
}

// pushRunner is the running tailer and dispatcher of this instance.
type pushRunner struct {
	devices server.Devices
	cancel  context.CancelFunc
	done    chan struct{}
	mode    string // how notifications leave, for the start banner
}

// startPush builds the sender (FCM when credentials are configured, the
// log sender otherwise) and starts the tailer and dispatcher. A store that
// does not implement notify.Store runs without push.
func startPush(f PushConfig, store engine.Store, dir identity.Store, reg prometheus.Registerer, now func() time.Time, log *slog.Logger) (*pushRunner, error) {
	ps, ok := store.(notify.Store)
	if !ok {
		log.Warn("push notifications off: the store has no outbox")
		return &pushRunner{mode: "off: the store has no outbox"}, nil
	}
	var sender notify.Sender = notify.LogSender{Log: log}
	mode := "logged, not sent (no FCM credentials: --fcm-credentials or GOOGLE_APPLICATION_CREDENTIALS)"
	if f.FCMCredentials != "" || os.Getenv("GOOGLE_APPLICATION_CREDENTIALS") != "" {
		var opts []option.ClientOption
		if f.FCMEndpoint != "" {
			opts = append(opts, option.WithEndpoint(f.FCMEndpoint))
		}
		s, err := fcm.New(context.Background(), fcm.Config{CredentialsFile: f.FCMCredentials, ProjectID: f.FCMProject,
			Options: opts})
		if err != nil {
			return nil, err
		}
		sender = s
		mode = "through FCM"
		if f.FCMProject != "" {
			mode += ", project " + f.FCMProject
		}
		log.Info("push notifications through FCM")
	} else {
		log.Info("push notifications logged (no FCM credentials)")
	}
	p := &pushRunner{devices: ps, done: make(chan struct{}), mode: mode}
	// The outbox is shared: every instance reports its depth, dispatching
	// or not.
	notify.RegisterOutbox(reg, ps, 2*time.Second)
	if f.Off {
		p.mode = "not dispatched by this instance (--push-off)"
		close(p.done)
		return p, nil
	}
	instance := instanceID()
	m := notify.NewMetrics(reg)
	// A device on the live stream is poked there, not through FCM.
	presence, _ := store.(notify.Presence)
	d := notify.NewDispatcher(notify.DispatcherConfig{Store: ps, Sender: sender, Instance: instance,
		MaxAttempts: f.MaxAttempts, Batch: f.Batch, Lease: f.Lease, Retention: f.Retention, Presence: presence, Log: log, Metrics: m, Now: now})
	t := notify.NewTailer(notify.TailerConfig{Feed: store, Store: ps, Directory: dir, Instance: instance, MaxAge: f.MaxAge, Log: log,
		Metrics: m, Enqueued: d.Kick, Now: now})
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	tailDone := make(chan struct{})
	go func() { defer close(tailDone); t.Run(ctx, f.Poll) }()
	go func() { defer close(p.done); d.Run(ctx, f.Poll); <-tailDone }()
	return p, nil
}

// stop ends the tailer and the dispatcher after the pass in flight (its
// sends are recorded), before the stores close.
func (p *pushRunner) stop() {
	if p == nil || p.cancel == nil {
		return
	}
	p.cancel()
	<-p.done
}

// instanceID names this process as a lease owner.
func instanceID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}
