package registry

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestAuditEveryChange: each change writes exactly one audit row naming its
// actor, object and reason; reads write none.
func TestAuditEveryChange(t *testing.T) {
	eachStore(t, func(t *testing.T, s *sqlStore) {
		start := time.Now().Add(-time.Second)
		ctx := WithActor(context.Background(), "carol", "release 7")
		must(s.CreateModel(ctx, RegisteredModel{Name: "m"}))(t)
		must(s.UpdateModel(ctx, RegisteredModel{Name: "m", Description: "x"}))(t)
		must(s.CreateVersion(ctx, ModelVersion{Model: "m", Source: "s3://b/m"}))(t)
		noErr(t, s.SetAlias(ctx, "m", "champion", 1))
		must(s.TransitionStage(ctx, "m", 1, StageStaging, false))(t)
		noErr(t, s.DeleteAlias(ctx, "m", "champion"))
		noErr(t, s.SaveEndpoint(ctx, "m", []byte(`{"weights":{"1":100}}`)))
		noErr(t, s.SaveRollout(ctx, "m", []byte(`{"state":"Progressing"}`), []byte(`{"step":1}`)))
		noErr(t, s.DeleteModel(context.Background(), "m")) // no actor: recorded as unknown
		must(s.Models(ctx))(t)
		must(s.Endpoints(ctx))(t)

		rows := must(s.Audit(ctx, AuditFilter{}))(t)
		var got []string
		for _, r := range rows {
			got = append(got, r.Actor+" "+r.Action+" "+r.Object)
			if r.At.Before(start) || !json.Valid(r.Detail) {
				t.Errorf("row %+v: bad time or detail", r)
			}
		}
		want := []string{
			"carol model.create model/m",
			"carol model.update model/m",
			"carol version.create model/m/version/1",
			"carol alias.set model/m/alias/champion",
			"carol version.stage model/m/version/1",
			"carol alias.delete model/m/alias/champion",
			"carol endpoint.save endpoint/m",
			"carol rollout.save rollout/m",
			"unknown model.delete model/m",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("audit trail (-want +got):\n%s", diff)
		}
		if !strings.Contains(string(rows[0].Detail), `"reason":"release 7"`) {
			t.Errorf("detail %s lacks the reason", rows[0].Detail)
		}
		if last := must(s.Audit(ctx, AuditFilter{Actor: "carol", Limit: 2}))(t); len(last) != 2 || last[1].Action != "rollout.save" {
			t.Errorf("Audit(carol, limit 2) = %+v, want the newest two, oldest first", last)
		}
		if n := len(must(s.Audit(ctx, AuditFilter{Since: time.Now().Add(time.Hour)}))(t)); n != 0 {
			t.Errorf("Audit(since the future) = %d rows", n)
		}
	})
}

func TestEndpointsAndRollouts(t *testing.T) {
	eachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		noErr(t, s.SaveEndpoint(ctx, "mlp", []byte(`{"v":1}`)))
		noErr(t, s.SaveEndpoint(ctx, "mlp", []byte(`{"v":2}`)))
		noErr(t, s.SaveEndpoint(ctx, "other", []byte(`[]`)))
		wantErr(t, "bad policy", s.SaveEndpoint(ctx, "mlp", []byte(`{"v":`)), ErrInvalid)
		eps := must(s.Endpoints(ctx))(t)
		if string(eps["mlp"]) != `{"v":2}` || string(eps["other"]) != `[]` || len(eps) != 2 {
			t.Errorf("Endpoints = %q", eps)
		}

		for i, ev := range []string{`{"n":1}`, `{"n":2}`, ``, `{"n":3}`} {
			var event []byte
			if ev != "" {
				event = []byte(ev)
			}
			noErr(t, s.SaveRollout(ctx, "mlp", []byte(`{"state":`+string(rune('0'+i))+`}`), event))
		}
		wantErr(t, "bad status", s.SaveRollout(ctx, "mlp", []byte(`nope`), nil), ErrInvalid)
		wantErr(t, "bad event", s.SaveRollout(ctx, "mlp", []byte(`{}`), []byte(`{`)), ErrInvalid)
		if got := string(must(s.Rollouts(ctx))(t)["mlp"]); got != `{"state":3}` {
			t.Errorf("Rollouts[mlp] = %s", got)
		}
		for limit, want := range map[int][]string{
			0: {`{"n":1}`, `{"n":2}`, `{"n":3}`},
			2: {`{"n":2}`, `{"n":3}`},
		} {
			var got []string
			for _, e := range must(s.RolloutHistory(ctx, "mlp", limit))(t) {
				got = append(got, string(e))
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("RolloutHistory(limit %d) (-want +got):\n%s", limit, diff)
			}
		}
		if h := must(s.RolloutHistory(ctx, "none", 0))(t); len(h) != 0 {
			t.Errorf("history of an endpoint without rollouts: %q", h)
		}
		if n := len(must(s.Audit(ctx, AuditFilter{Object: "rollout/mlp"}))(t)); n != 4 {
			t.Errorf("%d rollout audit rows, want 4", n)
		}
	})
}
