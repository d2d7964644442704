package workflow

import (
	"context"
	"encoding/json"
	"time"

	engine "github.com/fieldsync/fieldsync/sync"
)

// Sweep escalates every follow-up past its due time that is neither done,
// cancelled nor escalated yet: it sets escalated_at, which gives the
// accountable role the follow-up (and its order) in its feed. It reads only
// the index of pending follow-ups (sync.IndexOpenFollowUps). Each write is
// conditional on escalated_at being absent, so sweeps running at once on
// several instances escalate each follow-up once; running it again changes
// nothing. It returns how many follow-ups it escalated.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	orgs, err := s.cfg.Store.WorkflowOrgs(ctx)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, org := range orgs {
		n, err := s.sweepOrg(ctx, org)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (s *Service) sweepOrg(ctx context.Context, org string) (int, error) {
	now := s.now()
	var after int64
	escalated := 0
	for {
		changes, more, err := s.cfg.Docs.Pull(ctx, engine.PullQuery{Org: org, Scopes: []string{engine.IndexOpenFollowUps},
			After: after, Limit: listPullPage, MaxBytes: 8 << 20})
		if err != nil {
			return escalated, err
		}
		var docs []engine.UpsertDoc
		for _, c := range changes {
			after = c.Seq
			if c.Deleted || c.Evicted || c.Collection != engine.CollFollowUps {
				continue
			}
			body := decode(&engine.Document{Body: c.Body})
			due, err := time.Parse(time.RFC3339Nano, str(body, "due_at"))
			if err != nil || !now.After(due) || body["escalated_at"] != nil {
				continue
			}
			docs = append(docs, engine.UpsertDoc{Collection: engine.CollFollowUps, ID: c.ID,
				Fields: map[string]json.RawMessage{"escalated_at": raw(stamp(now))},
				Expect: &engine.Expect{Field: "escalated_at", In: []string{""}}})
		}
		for start := 0; start < len(docs); start += 100 {
			chunk := docs[start:min(start+100, len(docs))]
			outs, err := s.cfg.Writer.Upsert(ctx, system(org), "sweep", chunk)
			if err != nil {
				return escalated, err
			}
			for _, o := range outs {
				if o.Status != engine.StatusRejected {
					escalated++
				}
			}
		}
		if !more || len(changes) == 0 {
			return escalated, nil
		}
	}
}
