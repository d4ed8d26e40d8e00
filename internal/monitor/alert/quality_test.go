package alert

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/monitor/quality"
	"github.com/ferryml/ferry/internal/monitor/quality/qualitytest"
)

// TestFallingAccuracyFiresThroughComposedSources wires the quality store and the
// request tap as the integrator will (Sources): ground truth that shows accuracy
// falling fires the rule, and the receiver gets it.
func TestFallingAccuracyFiresThroughComposedSources(t *testing.T) {
	now := time.Now()
	preds := &qualitytest.Log{}
	for i := range 100 {
		preds.Put(fmt.Sprint(i), quality.Prediction{Model: "mlp", Version: "3", Time: now.Add(-time.Minute), Outputs: []float64{0.2, 0.8}})
	}
	store, err := quality.New(t.TempDir(), preds, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rcv := newReceiver(t)
	e, err := New(Config{Rules: []Rule{{Name: "AccuracyLow", Model: "mlp", Metric: quality.Accuracy, Op: "<", Threshold: 0.8}},
		Webhooks: []Webhook{{URL: rcv.srv.URL}}}, Sources{NewRequests(0, 0), store}, nil)
	if err != nil {
		t.Fatal(err)
	}
	running(t, e)
	label := func(from, to, class int) {
		var ls []quality.Label
		for i := from; i < to; i++ {
			ls = append(ls, quality.Label{ID: fmt.Sprint(i), Class: &quality.Class{Index: class}})
		}
		if _, err := store.Add(context.Background(), "mlp", ls); err != nil {
			t.Fatal(err)
		}
		if err := store.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	label(0, 50, 1) // all right
	e.evaluate(now)
	if s := e.Alerts()[0]; s.State != StateInactive || *s.Value != 1 {
		t.Fatalf("with accuracy 1: %+v", s)
	}
	label(50, 100, 0) // all wrong: accuracy 0.5
	e.evaluate(now.Add(time.Second))
	rcv.wait(1)
	if m := rcv.messages()[0]; m.Status != "firing" || m.Alerts[0].Annotations["value"] != "0.5" {
		t.Fatalf("notification %+v", m)
	}
}
