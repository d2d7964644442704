package server

import (
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type metrics struct {
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	mutations *prometheus.CounterVec
	pulled    prometheus.Counter
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
		mutations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fieldsync_push_mutations_total", Help: "Pushed mutations by outcome (applied, merged, rejected).",
		}, []string{"outcome"}),
		pulled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fieldsync_pull_documents_total", Help: "Changes served by pulls.",
		}),
	}
	reg.MustRegister(m.requests, m.latency, m.mutations, m.pulled)
	return m
}

func (m *metrics) handler(reg *prometheus.Registry) fiber.Handler {
	return adaptor.HTTPHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
}

// observe records metrics and the access log line of every request.
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
	if status == fiber.StatusNotFound && route == "/" {
		route = "unmatched" // never a raw path: it would explode the label set
	}
	d := time.Since(start)
	s.metrics.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	s.metrics.latency.WithLabelValues(route, method).Observe(d.Seconds())
	s.log.Info("request", "request_id", requestID(c), "method", method, "route", route,
		"status", status, "duration_ms", float64(d.Microseconds())/1000, "user", actorOf(c).User)
	return nil
}
