package push

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics count what the tailer and dispatcher did. They are named
// fieldsync_notifications_*: "push" alone would be read as the sync
// protocol's push (fieldsync_sync_push_*).
type Metrics struct {
	enq     prometheus.Counter
	muted   prometheus.Counter
	sent    prometheus.Counter
	retried prometheus.Counter
	failed  prometheus.Counter
	invalid prometheus.Counter
	online  prometheus.Counter
}

// NewMetrics registers the notification counters with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldsync_notifications_" + name, Help: help})
	}
	m := &Metrics{
		enq:     c("enqueued_total", "Notifications inserted into the outbox."),
		muted:   c("muted_total", "Notifications not enqueued because the user muted their category."),
		sent:    c("sent_total", "Messages the push service accepted (one per device)."),
		retried: c("retried_total", "Notifications scheduled for another attempt."),
		failed:  c("failed_total", "Notifications given up on (dead), kept with their last error."),
		invalid: c("invalid_tokens_total", "Device tokens removed because the push service reported them invalid."),
		online:  c("skipped_online_total", "Device pushes skipped because the device was on the live stream."),
	}
	reg.MustRegister(m.enq, m.muted, m.sent, m.retried, m.failed, m.invalid, m.online)
	return m
}

func (m *Metrics) enqueued(n int) {
	m.enq.Add(float64(n))
}

// RegisterOutbox exports the outbox's depth as the gauge
// fieldsync_notifications_outbox{status="pending"|"dead"}, read from the
// store when scraped (so every instance reports the shared outbox; alert on
// max, not sum). A scrape whose count takes longer than timeout reports
// nothing rather than holding the scraper.
func RegisterOutbox(reg prometheus.Registerer, s Store, timeout time.Duration) {
	reg.MustRegister(&outboxCollector{store: s, timeout: timeout})
}

var outboxDesc = prometheus.NewDesc("fieldsync_notifications_outbox",
	"Notifications in the outbox by status: pending (waiting to be sent) and dead (given up on, until pruned).",
	[]string{"status"}, nil)

type outboxCollector struct {
	store   Store
	timeout time.Duration
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) { ch <- outboxDesc }

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	pending, dead, err := c.store.OutboxDepth(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(outboxDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(outboxDesc, prometheus.GaugeValue, float64(pending), StatusPending)
	ch <- prometheus.MustNewConstMetric(outboxDesc, prometheus.GaugeValue, float64(dead), StatusDead)
}
