package quality

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func errorsIs(err error) bool { return errors.Is(err, ErrInvalid) }

func TestLabelsSurviveARestartAndTheLastWins(t *testing.T) {
	dir := t.TempDir()
	log := newMemLog()
	now := time.Now()
	log.put("a", Prediction{Model: "m", Version: "1", Time: now, Outputs: []float64{0.2, 0.8}})
	log.put("b", Prediction{Model: "m", Version: "1", Time: now, Outputs: []float64{0.9, 0.1}})
	s, err := New(dir, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	add(t, s, "m", []Label{{ID: "a", Class: &Class{Index: 0}}, {ID: "b", Class: &Class{Index: 0}}})
	add(t, s, "m", []Label{{ID: "a", Class: &Class{Index: 1}}}) // corrects a
	s.Close()
	// A crash tore the last write: the line is skipped, and the next append starts
	// a line of its own.
	f, err := os.OpenFile(filepath.Join(dir, fileName), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"at":"2026-01-01T00:00:00Z","model":"m","id":"c","lab`)
	f.Close()

	s, err = New(dir, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	add(t, s, "m", []Label{{ID: "c", Class: &Class{Index: 1}}})
	ms, err := s.Metrics(context.Background(), Query{Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Labelled != 2 || ms[0].Unmatched != 1 || ms[0].Values[Accuracy] != 1 {
		t.Fatalf("after a restart: %+v; want a and b labelled right (accuracy 1), c unmatched", ms)
	}
	s.Close()
	if _, err := New(dir, log, nil); err != nil { // the repaired file replays cleanly
		t.Fatal(err)
	}
}

func TestMemoryIsBoundedAndTheFileCompacted(t *testing.T) {
	dir := t.TempDir()
	s, err := New(dir, newMemLog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.SetMaxLabels(100)
	v := 1.0
	for range 30 {
		var ls []Label
		for i := range 200 {
			ls = append(ls, Label{ID: "id" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Value: &v})
		}
		add(t, s, "m", ls)
	}
	if s.live != 100 || len(s.models["m"]) != 100 || len(s.order) > 2*s.live+1024 {
		t.Fatalf("live %d, kept %d, order %d; want 100 kept", s.live, len(s.models["m"]), len(s.order))
	}
	s.Close()
	s, err = New(dir, newMemLog(), nil) // 6,000 lines for 200 ids: rewritten
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, _ := os.ReadFile(filepath.Join(dir, fileName))
	if n := strings.Count(string(b), "\n"); n != 200 {
		t.Fatalf("the compacted file has %d lines, want 200 (one per id)", n)
	}
}

func TestValueAndGaugeReportTheLatestWindow(t *testing.T) {
	log := newMemLog()
	now := time.Now()
	log.put("old", Prediction{Model: "m", Version: "1", Time: now.Add(-3 * time.Hour), Outputs: []float64{1}})
	log.put("new", Prediction{Model: "m", Version: "2", Time: now.Add(-time.Minute), Outputs: []float64{3}})
	s, err := New(t.TempDir(), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SetModel("m", ModelConfig{Task: Regression}); err != nil {
		t.Fatal(err)
	}
	zero := 0.0
	add(t, s, "m", []Label{{ID: "old", Value: &zero}, {ID: "new", Value: &zero}})
	if _, ok := s.Value("m", MAE); ok {
		t.Fatal("Value before any Refresh answered")
	}
	if err := s.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v, ok := s.Value("m", MAE); !ok || v != 3 {
		t.Fatalf("Value(m, mae) = %v, %v; want 3 (only the last hour's prediction)", v, ok)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collector())
	got := gather(t, reg)
	want := `ferry_model_quality{metric="labelled",model="m",version="2"} 1
ferry_model_quality{metric="mae",model="m",version="2"} 3
ferry_model_quality{metric="rmse",model="m",version="2"} 3
`
	if got != want {
		t.Fatalf("gathered:\n%s\nwant:\n%s", got, want)
	}
}

func TestClassNamesAndJSON(t *testing.T) {
	var ls []Label
	body := `[{"id":"a","label":"cat"},{"id":"b","label":2},{"id":"c","value":0.5}]`
	if err := json.Unmarshal([]byte(body), &ls); err != nil {
		t.Fatal(err)
	}
	if ls[0].Class.Name != "cat" || ls[1].Class.Index != 2 || *ls[2].Value != 0.5 {
		t.Fatalf("decoded %+v", ls)
	}
	back, _ := json.Marshal(ls)
	if string(back) != body {
		t.Fatalf("round trip: %s, want %s", back, body)
	}
	for _, bad := range []string{`{"label":-1}`, `{"label":1.5}`, `{"label":""}`, `{"label":true}`, `{"label":[1]}`} {
		var l Label
		if err := json.Unmarshal([]byte(bad), &l); err == nil {
			t.Errorf("%s decoded as %+v, want an error", bad, l)
		}
	}
	log := newMemLog()
	log.put("a", Prediction{Model: "m", Version: "1", Outputs: []float64{0.1, 0.9}})
	log.put("b", Prediction{Model: "m", Version: "1", Outputs: []float64{0.8, 0.2}})
	s, err := New(t.TempDir(), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetModel("m", ModelConfig{Classes: []string{"dog", "cat"}})
	add(t, s, "m", []Label{{ID: "a", Class: &Class{Name: "cat"}}, {ID: "b", Class: &Class{Name: "emu"}}})
	ms, _ := s.Metrics(context.Background(), Query{Model: "m"})
	if ms[0].Labelled != 1 || ms[0].Skipped != 1 || ms[0].Values[Accuracy] != 1 {
		t.Fatalf("%+v: want cat scored right and the unknown emu skipped", ms[0])
	}
}

func FuzzParseLine(f *testing.F) {
	f.Add([]byte(`{"at":"2026-01-01T00:00:00Z","model":"m","id":"a","label":3}`))
	f.Add([]byte(`{"model":"m","id":"a","label":"cat"}`))
	f.Add([]byte(`{"model":"m","id":"a","value":1e308}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ln, err := parseLine(b)
		if err != nil {
			return
		}
		if ln.Model == "" || ln.ID == "" || (ln.Class == nil) == (ln.Value == nil) {
			t.Fatalf("parseLine(%q) accepted %+v", b, ln)
		}
		if ln.Class != nil && ln.Class.Name == "" && ln.Class.Index < 0 {
			t.Fatalf("negative class from %q", b)
		}
	})
}

// gather renders reg's gauges one a line, sorted (the registry sorts them).
func gather(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+strconv.Quote(l.GetValue()))
			}
			fmt.Fprintf(&b, "%s{%s} %g\n", mf.GetName(), strings.Join(ls, ","), m.GetGauge().GetValue())
		}
	}
	return b.String()
}
