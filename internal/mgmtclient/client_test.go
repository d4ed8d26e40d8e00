package mgmtclient

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ferryml/ferry/internal/mgmtapi"
	"github.com/ferryml/ferry/internal/registry"
	"github.com/ferryml/ferry/internal/rollout"
	"github.com/ferryml/ferry/internal/router"
	"github.com/ferryml/ferry/internal/transport/mgmt"
	"github.com/ferryml/ferry/internal/transport/mgmt/mgmttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newClient(t *testing.T) *Client {
	t.Helper()
	srv := httptest.NewServer(mgmt.New(mgmttest.NewService(t), mgmt.Options{}))
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func oneFileTar(t *testing.T, content string) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: "model.onnx", Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(content))
	tw.Close()
	return &b
}

func check(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestEveryRoute drives each method against the real handler and a real registry.
func TestEveryRoute(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	c.Actor, c.Reason = "tester", "client test"

	m, err := c.CreateModel(ctx, mgmtapi.NewModel{Name: "mlp", Tags: map[string]string{"team": "ml"}})
	check(t, "CreateModel", err)
	if m.Name != "mlp" || m.Versions == nil || m.Aliases == nil {
		t.Errorf("CreateModel = %+v, want mlp with empty (not null) versions and aliases", m)
	}
	for i, w := range []string{"one", "two"} {
		v, err := c.PushVersion(ctx, "mlp", mgmtapi.VersionMeta{Metrics: map[string]float64{"acc": 0.5}, Lineage: registry.Lineage{RunID: w}}, oneFileTar(t, w))
		check(t, "PushVersion", err)
		if v.Version != int64(i+1) || v.Lineage.RunID != w || v.Metrics["acc"] != 0.5 {
			t.Errorf("PushVersion %d = %+v", i+1, v)
		}
	}
	desc := "d"
	m, err = c.UpdateModel(ctx, "mlp", mgmtapi.ModelPatch{Description: &desc})
	check(t, "UpdateModel", err)
	if m.Description != "d" || len(m.Versions) != 2 {
		t.Errorf("UpdateModel = %+v", m)
	}
	a, err := c.SetAlias(ctx, "mlp", "champion", 1)
	check(t, "SetAlias", err)
	if a.Version != 1 {
		t.Errorf("SetAlias = %+v", a)
	}
	check(t, "SetAlias challenger", errOnly(c.SetAlias(ctx, "mlp", "challenger", 2)))
	as, err := c.Aliases(ctx, "mlp")
	check(t, "Aliases", err)
	if as["champion"] != 1 || as["challenger"] != 2 {
		t.Errorf("Aliases = %v", as)
	}
	check(t, "DeleteAlias", c.DeleteAlias(ctx, "mlp", "challenger"))
	v, err := c.Version(ctx, "mlp", "champion")
	check(t, "Version", err)
	if v.Version != 1 {
		t.Errorf("Version(champion) = %d", v.Version)
	}
	v, err = c.TransitionStage(ctx, "mlp", 2, mgmtapi.StageRequest{Stage: registry.StageStaging})
	check(t, "TransitionStage", err)
	if v.Stage != registry.StageStaging {
		t.Errorf("TransitionStage = %s", v.Stage)
	}
	vs, err := c.Versions(ctx, "mlp")
	check(t, "Versions", err)
	ms, err := c.Models(ctx)
	check(t, "Models", err)
	one, err := c.Model(ctx, "mlp")
	check(t, "Model", err)
	if len(vs) != 2 || len(ms) != 1 || one.Aliases["champion"] != 1 {
		t.Errorf("Versions %d, Models %d, Model %+v", len(vs), len(ms), one)
	}

	e, err := c.SetEndpoint(ctx, "mlp", &router.Policy{Arms: []router.Arm{{Version: "1", Weight: 100}}})
	check(t, "SetEndpoint", err)
	es, err := c.Endpoints(ctx)
	check(t, "Endpoints", err)
	e1, err := c.Endpoint(ctx, "mlp")
	check(t, "Endpoint", err)
	if e.Policy == nil || len(es) != 1 || e1.Live == nil {
		t.Errorf("SetEndpoint %+v, Endpoints %+v, Endpoint %+v", e, es, e1)
	}

	r := rollout.Rollout{Endpoint: "mlp", Candidate: "2", Strategy: rollout.Strategy{Steps: []rollout.Step{{SetWeight: &rollout.SetWeight{Percent: 20}}, {Pause: &rollout.PauseStep{}}}}}
	s, err := c.StartRollout(ctx, r)
	check(t, "StartRollout", err)
	if s.Rollout.Stable != "1" {
		t.Errorf("StartRollout stable = %q, want the champion 1", s.Rollout.Stable)
	}
	_, err = c.StartRollout(ctx, r)
	if StatusOf(err) != http.StatusConflict || !strings.Contains(err.Error(), "rollout in progress") {
		t.Errorf("second StartRollout err = %v, want a 409 naming the rollout in progress", err)
	}
	check(t, "abort", errOnly(c.RolloutAction(ctx, "mlp", mgmtapi.ActionAbort)))
	var d mgmtapi.RolloutDetail
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end) && d.State != rollout.Aborting && d.State != rollout.Aborted; time.Sleep(20 * time.Millisecond) {
		d, err = c.Rollout(ctx, "mlp")
		check(t, "Rollout", err)
	}
	if d.Weights["1"] != 100 || len(d.History) == 0 {
		t.Errorf("after abort: %+v, want stable 1 at 100 and a history", d)
	}
	rs, err := c.Rollouts(ctx)
	check(t, "Rollouts", err)
	if len(rs) != 1 {
		t.Errorf("Rollouts = %d", len(rs))
	}

	audit, err := c.Audit(ctx, registry.AuditFilter{Actor: "tester", Action: "alias.set"})
	check(t, "Audit", err)
	if len(audit) != 2 || !bytes.Contains(audit[0].Detail, []byte("client test")) {
		t.Errorf("Audit = %+v, want the 2 alias moves with the reason", audit)
	}
	check(t, "DeleteModel", c.DeleteModel(ctx, "mlp"))
}

func errOnly[T any](_ T, err error) error { return err }

func TestErrorsCarryStatusAndMessage(t *testing.T) {
	ctx := context.Background()
	c := newClient(t)
	for _, tc := range []struct {
		name   string
		err    error
		status int
		msg    string
	}{
		{"unknown model", errOnly(c.Model(ctx, "nope")), 404, `model "nope"`},
		{"a slash stays in the name", errOnly(c.Model(ctx, "a/b")), 400, `must not contain '/'`},
		{"..", errOnly(c.Model(ctx, "..")), 400, "'..'"},
		{"bad policy", errOnly(c.SetEndpoint(ctx, "m", &router.Policy{Arms: []router.Arm{{Version: "1", Weight: 60}}})), 400, "sum to 60"},
	} {
		var e *Error
		if !errors.As(tc.err, &e) || e.Status != tc.status || !strings.Contains(e.Message, tc.msg) {
			t.Errorf("%s: err = %v, want status %d naming %q", tc.name, tc.err, tc.status, tc.msg)
		}
	}
	if _, err := New("127.0.0.1:8000", nil); err == nil {
		t.Error("New without a scheme: no error")
	}
}
