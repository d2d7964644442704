package main

import (
	"flag"
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
	fs.Float64Var(&v.radiusM, "visit-radius", d.RadiusM,
		"metres from the customer's location within which a check-in is verified (env FIELDSYNC_VISIT_RADIUS)")
	fs.Float64Var(&v.maxAccuracyM, "visit-max-accuracy", d.MaxAccuracyM,
		"largest GPS accuracy radius in metres a verified check-in may report (env FIELDSYNC_VISIT_MAX_ACCURACY)")
	fs.DurationVar(&v.clockTolerance, "clock-tolerance", d.ClockTolerance,
		"device clock offsets up to this are taken for transit time and not corrected (env FIELDSYNC_CLOCK_TOLERANCE)")
}

func (v visitFlags) rules() engine.VisitRules {
	return engine.VisitRules{RadiusM: v.radiusM, MaxAccuracyM: v.maxAccuracyM, ClockTolerance: v.clockTolerance}
}
