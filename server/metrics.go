package server

import (
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fieldsync/fieldsync/identity"
)

type metrics struct {
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	mutations *prometheus.CounterVec
	pulled    prometheus.Counter
	authFails *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldsync_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fieldsync_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method"}),
		// fieldsync_sync_*: the sync protocol's push and pull, apart from
		// push notifications (fieldsync_notifications_*).
		mutations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldsync_sync_push_mutations_total", Help: "Mutations of sync pushes by outcome (applied, merged, rejected).",
		}, []string{"outcome"}),
		pulled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fieldsync_sync_pull_changes_total", Help: "Changes served by sync pulls.",
		}),
		authFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldsync_auth_failures_total",
			Help: "Requests refused because of who the caller is (every 401, a disabled user, a throttled sign-in), by error code.",
		}, []string{"code"}),
	}
	reg.MustRegister(m.requests, m.latency, m.mutations, m.pulled, m.authFails)
	return m
}

func (m *metrics) handler(reg *prometheus.Registry) fiber.Handler {
	return adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
}

// errorCodeKey is where handleError leaves the code it answered, for the
// request's log line and metrics.
const errorCodeKey = "fieldsync.error_code"

// quietRoutes are polled by probes and scrapers: logged at debug only.
var quietRoutes = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// observe records metrics and the access log line of every request: the
// error code, organisation and user with it, never a token or a body.
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	if err := c.Next(); err != nil {
		// Answer the error here, so the status below is the one sent.
		if err := s.handleError(c, err); err != nil {
			return err
		}
	}
	status := c.Response().StatusCode()
	// Fiber's strings point into reused buffers: the metric keeps its labels
	// beyond this request, so they must be copies.
	method := strings.Clone(c.Method())
	route := strings.Clone(c.Route().Path)
	attrs := make([]any, 0, 20)
	if status == fiber.StatusNotFound && route == "/" {
		route = "unmatched" // never a raw path in a label: it would explode the label set
		attrs = append(attrs, "path", truncate(c.Path(), 200))
	}
	d := time.Since(start)
	s.metrics.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	s.metrics.latency.WithLabelValues(route, method).Observe(d.Seconds())
	code, _ := c.Locals(errorCodeKey).(string)
	if code != "" && (status == fiber.StatusUnauthorized || authCodes[code]) {
		s.metrics.authFails.WithLabelValues(code).Inc()
	}
	a := actorOf(c)
	attrs = append(attrs, "request_id", requestID(c), "method", method, "route", route, "status", status,
		"duration_ms", float64(d.Microseconds())/1000)
	if code != "" {
		attrs = append(attrs, "code", code)
	}
	if a.Org != "" {
		attrs = append(attrs, "org", a.Org, "user", a.User)
	}
	level := slog.LevelInfo
	if quietRoutes[route] && status < 400 {
		level = slog.LevelDebug
	}
	s.log.Log(c.UserContext(), level, "request", attrs...)
	return nil
}

// authCodes are the refusals of who the caller is that are not 401s.
var authCodes = map[string]bool{identity.CodeUserDisabled: true, identity.CodeLoginThrottled: true}

func truncate(s string, n int) string {
	if len(s) <= n {
		return strings.Clone(s)
	}
	return strings.Clone(s[:n]) + "..."
}
