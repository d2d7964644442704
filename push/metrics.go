package push

import "github.com/prometheus/client_golang/prometheus"

// Metrics count what the tailer and dispatcher did.
type Metrics struct {
	enq     prometheus.Counter
	muted   prometheus.Counter
	sent    prometheus.Counter
	retried prometheus.Counter
	failed  prometheus.Counter
	invalid prometheus.Counter
	online  prometheus.Counter
}

// NewMetrics registers the push metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldsync_push_" + name, Help: help})
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
