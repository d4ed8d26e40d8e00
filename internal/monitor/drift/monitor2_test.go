package drift

import (
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"sigs.k8s.io/yaml"

	"github.com/ferryml/ferry/internal/core"
)

// Without a baseline, the first rows become it; later traffic is compared with them.
func TestReferenceWindowBecomesBaseline(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	synctest.Test(t, func(t *testing.T) {
		m, err := New(Config{Window: WindowConfig{Count: 1000}, MaxRowsPerSecond: -1, Models: map[string]ModelConfig{
			"m": {ReferenceWindow: &WindowConfig{Count: 3000}, Names: map[string][]string{"x": {"a", "b"}}}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		run(t, m)
		if r, _ := m.Report("m"); r.Status != StatusCollecting {
			t.Errorf("before traffic: status %q, want collecting_reference", r.Status)
		}
		feed(m, "m", gen(rng, 3000, 0, []string{"a", "b"}), 10)
		r, _ := m.ReportCurrent("m")
		if r.Status == StatusCollecting || r.Baseline != "reference_window" {
			t.Fatalf("after 3000 rows: status %q baseline %q, want the reference window as baseline", r.Status, r.Baseline)
		}
		names := []string{}
		for _, f := range r.Features {
			names = append(names, f.Feature)
		}
		if got := strings.Join(names, ","); got != "a,b,label,x[2]" {
			t.Errorf("features %s, want a,b (renamed by names), label, x[2]", got)
		}
		feed(m, "m", gen(rng, 1000, 2, []string{"a", "b"}), 10)
		r, _ = m.Report("m")
		if f := feature(t, r, "a"); !f.Drifted || f.RefN != 3000 {
			t.Errorf("a shifted by 2: %+v, want drift against 3000 reference rows", f)
		}
		if f := feature(t, r, "b"); f.Drifted {
			t.Errorf("b unchanged: %+v, want no drift", f)
		}
	})
}

// Shadow copies and failed requests are skipped and counted; a full queue drops whole
// records and counts their rows.
func TestSkippedAndDropped(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	p, _ := ProfileFromCSV(strings.NewReader(csvOf(gen(rng, 100, 0, []string{"a"}))), ProfileOptions{})
	synctest.Test(t, func(t *testing.T) {
		m, _ := New(Config{Queue: 4, Window: WindowConfig{Count: 1000}, Models: map[string]ModelConfig{"m": {}}}, nil)
		m.SetBaseline("m", p)
		rec := record("m", gen(rng, 5, 0, []string{"a"}))
		sh := *rec
		sh.Route = core.RouteShadow
		m.Finished(&sh)
		bad := *rec
		bad.Err = errors.New("boom")
		m.Finished(&bad)
		m.Finished(record("unwatched", gen(rng, 5, 0, []string{"a"})))
		for range 6 { // Run is not running: 4 fit in the queue, 2 records (10 rows) drop
			m.Finished(rec)
		}
		run(t, m)
		settle()
		r, _ := m.ReportCurrent("m")
		if r.Shadow != 1 || r.Failed != 1 || r.Dropped != 10 || r.Rows != 20 {
			t.Errorf("shadow %d failed %d dropped %d rows %d, want 1, 1, 10, 20", r.Shadow, r.Failed, r.Dropped, r.Rows)
		}
	})
}

// The collector's metrics, scraped over HTTP as Prometheus would.
func TestCollectorOverHTTP(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	p, _ := ProfileFromCSV(strings.NewReader(csvOf(gen(rng, 2000, 0, []string{"a", "b"}))), ProfileOptions{})
	reg := prometheus.NewRegistry()
	synctest.Test(t, func(t *testing.T) {
		m, _ := New(Config{Window: WindowConfig{Count: 500}, Models: map[string]ModelConfig{"m": {}}}, nil)
		m.SetBaseline("m", p)
		run(t, m)
		feed(m, "m", gen(rng, 500, 3, []string{"a", "b"}), 10)
		reg.MustRegister(m.Collector())
	})
	// The monitor has stopped; its last closed window is still served, over a real
	// socket (which cannot live in the synctest bubble).
	body := scrape(t, reg)
	for _, want := range []string{
		`ferry_drift_value{feature="x[0]",method="wasserstein",model="m"}`,
		`ferry_drift_detected{feature="x[0]",model="m"} 1`,
		`ferry_drift_detected{feature="x[1]",model="m"} 0`,
		`ferry_drift_share_drifted{model="m"} 0.25`,
		`ferry_drift_dataset_drift{model="m"} 0`,
		`ferry_drift_window_rows{model="m"} 500`,
		`ferry_drift_rows_dropped_total{model="m"} 0`,
		`ferry_drift_records_skipped_total{model="m",reason="shadow"} 0`,
		`ferry_drift_invalid_values{feature="label",model="m"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s; got:\n%s", want, body)
		}
	}
}

// scrape serves reg on 127.0.0.1 and reads the exposition as Prometheus would.
func scrape(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %d %v", res.StatusCode, err)
	}
	return string(b)
}

func TestConfigFromYAML(t *testing.T) {
	in := `
window: {duration: 1m}
drift_share: 0.3
models:
  iris:
    baseline: {path: iris.csv}
    names: {input__0: [sepal_length, sepal_width]}
    features:
      "*": {method: psi, threshold: 0.2}
      species: {kind: categorical}
`
	var c Config
	if err := yaml.UnmarshalStrict([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if time.Duration(c.Window.Duration) != time.Minute || *c.Models["iris"].Features["*"].Threshold != 0.2 {
		t.Errorf("config = %+v", c)
	}
	bad := Config{Window: WindowConfig{Count: 5, Duration: Duration(time.Second)}, DriftShare: 2, Models: map[string]ModelConfig{
		"m": {Baseline: &BaselineSource{Path: "x.txt"}, ReferenceWindow: &WindowConfig{},
			Features: map[string]FeatureConfig{"a": {Method: "magic", Kind: "text"}}}}}
	err := bad.Validate()
	for _, want := range []string{"window: set exactly one", "drift_share", `models.m.baseline: format "txt"`,
		"models.m.reference_window", `models.m.features["a"].method: unknown drift method "magic"`, `features["a"].kind`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %q", err, want)
		}
	}
	if _, err := New(Config{Window: WindowConfig{Count: 10}, Models: map[string]ModelConfig{"m": {Baseline: &BaselineSource{Path: "/nonexistent.csv"}}}}, nil); err == nil || !strings.Contains(err.Error(), "models.m.baseline") {
		t.Errorf("New with a missing baseline file: %v, want an error naming models.m.baseline", err)
	}
}

// Integer features declared categorical are compared as categories; a BYTES value in
// a numeric feature is dropped and counted; a configured feature the baseline lacks
// is an error.
func TestFeatureKinds(t *testing.T) {
	mc := ModelConfig{Features: map[string]FeatureConfig{"x[2]": {Kind: Categorical}}}
	rng := rand.New(rand.NewPCG(13, 14))
	p, err := ProfileFromCSV(strings.NewReader(csvOf(gen(rng, 500, 0, []string{"a"}))), mc.options())
	if err != nil || p.Features["x[2]"].Kind != Categorical || p.Features["x[2]"].Categories["2"] == 0 {
		t.Fatalf("x[2] declared categorical: %+v, %v", p.Features["x[2]"], err)
	}
	synctest.Test(t, func(t *testing.T) {
		m, _ := New(Config{Window: WindowConfig{Count: 100}, Models: map[string]ModelConfig{"m": mc}}, nil)
		if err := m.SetBaseline("m", p); err != nil {
			t.Fatal(err)
		}
		run(t, m)
		rows := gen(rng, 100, 0, []string{"a"})
		for i := range rows {
			rows[i].x[2] = 7 // a value the baseline never had
		}
		feed(m, "m", rows, 10)
		r, _ := m.Report("m")
		if f := feature(t, r, "x[2]"); f.Kind != Categorical || f.NewCategories != 100 || !f.Drifted || f.Method != "chisquare" {
			t.Errorf("x[2] all a new value: %+v, want categorical, 100 new, drifted by chisquare (3 values + 1 new, 500 rows)", f)
		}
	})
	// label is categorical in the baseline; sent as a number it is a category too, but
	// a numeric feature fed BYTES drops them.
	q, _ := ProfileFromCSV(strings.NewReader("label\n1\n2\n"), ProfileOptions{})
	synctest.Test(t, func(t *testing.T) {
		m, _ := New(Config{Window: WindowConfig{Count: 2}, Models: map[string]ModelConfig{"m": {}}}, nil)
		m.SetBaseline("m", q)
		run(t, m)
		feed(m, "m", gen(rng, 2, 0, []string{"a"}), 2)
		r, _ := m.Report("m")
		if f := feature(t, r, "label"); f.Invalid != 2 || f.Status != StatusInsufficient {
			t.Errorf("BYTES into a numeric feature: %+v, want 2 invalid, insufficient data", f)
		}
		bad := ModelConfig{Features: map[string]FeatureConfig{"nope": {Method: "ks"}}}
		m2, _ := New(Config{Window: WindowConfig{Count: 2}, Models: map[string]ModelConfig{"m": bad}}, nil)
		if err := m2.SetBaseline("m", q); err == nil || !strings.Contains(err.Error(), `features "nope" are configured but not in the baseline`) {
			t.Errorf("SetBaseline with a configured feature the baseline lacks: %v", err)
		}
	})
}

// Time windows close on their boundary, with or without traffic, and name it.
func TestTimeWindows(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	p, _ := ProfileFromCSV(strings.NewReader(csvOf(gen(rng, 500, 0, []string{"a"}))), ProfileOptions{})
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		m, _ := New(Config{Window: WindowConfig{Duration: Duration(time.Minute)}, Models: map[string]ModelConfig{
			"m": {}, "r": {ReferenceWindow: &WindowConfig{Duration: Duration(time.Minute)}}}}, nil)
		m.SetBaseline("m", p)
		run(t, m)
		feed(m, "m", gen(rng, 100, 0, []string{"a"}), 10)
		feed(m, "r", gen(rng, 300, 0, []string{"a"}), 10)
		time.Sleep(30 * time.Second)
		feed(m, "m", gen(rng, 100, 0, []string{"a"}), 10)
		time.Sleep(31 * time.Second)
		settle()
		r, _ := m.Report("m")
		if r.Rows != 200 || !r.Start.Equal(t0) || !r.End.Equal(t0.Add(time.Minute)) {
			t.Errorf("first window: %d rows [%v, %v), want 200 rows [t0, t0+1m)", r.Rows, r.Start.Sub(t0), r.End.Sub(t0))
		}
		if r, _ := m.ReportCurrent("r"); r.Status == StatusCollecting || feature(t, r, "x[0]").RefN != 300 {
			t.Errorf("reference window of 1m: status %q, want a baseline of the 300 rows of its first minute", r.Status)
		}
		feed(m, "m", gen(rng, 50, 0, []string{"a"}), 10)
		time.Sleep(time.Minute)
		settle()
		r, _ = m.Report("m")
		if r.Rows != 50 || !r.Start.Equal(t0.Add(time.Minute)) || !r.End.Equal(t0.Add(2*time.Minute)) {
			t.Errorf("second window: %d rows [%v, %v), want 50 rows [t0+1m, t0+2m)", r.Rows, r.Start.Sub(t0), r.End.Sub(t0))
		}
	})
}
