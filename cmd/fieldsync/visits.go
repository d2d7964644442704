package main

import (
	"flag"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/sync/engine"
)

// visitFlags are serve's flags of visit verification (docs/workflows.md,
// "Visits"; docs/operations.md).
type visitFlags struct {
	radiusM, maxAccuracyM float64
	clockTolerance        time.Duration
}

func (v *visitFlags) register(fs *flag.FlagSet) {
	d := engine.DefaultVisitRules
	fs.Float64Var(&v.radiusM, "visit-radius", envFloat("VISIT_RADIUS", d.RadiusM),
		"metres from the customer's location within which a check-in is verified (env FIELDSYNC_VISIT_RADIUS)")
	fs.Float64Var(&v.maxAccuracyM, "visit-max-accuracy", envFloat("VISIT_MAX_ACCURACY", d.MaxAccuracyM),
		"largest GPS accuracy radius in metres a verified check-in may report (env FIELDSYNC_VISIT_MAX_ACCURACY)")
	fs.DurationVar(&v.clockTolerance, "clock-tolerance", envDuration("CLOCK_TOLERANCE", d.ClockTolerance),
		"device clock offsets up to this are taken for transit time and not corrected (env FIELDSYNC_CLOCK_TOLERANCE)")
}

func (v visitFlags) rules() engine.VisitRules {
	return engine.VisitRules{RadiusM: v.radiusM, MaxAccuracyM: v.maxAccuracyM, ClockTolerance: v.clockTolerance}
}

func envFloat(name string, def float64) float64 {
	if v, ok := os.LookupEnv("FIELDSYNC_" + name); ok {
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			return f
		}
	}
	return def
}
