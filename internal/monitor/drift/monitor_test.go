package drift

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/tensor"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// row is one request row: numeric columns of input "x" and a label output.
type row struct {
	x     []float64
	label string
}

// record builds a finished request carrying rows: x as FP32 [n, F], label as BYTES [n].
func record(model string, rows []row) *core.Record {
	f := len(rows[0].x)
	x := &tensor.Tensor{Name: "x", DType: tensor.FP32, Shape: tensor.Shape{int64(len(rows)), int64(f)}}
	lab := &tensor.Tensor{Name: "label", DType: tensor.Bytes, Shape: tensor.Shape{int64(len(rows))}}
	for _, r := range rows {
		for _, v := range r.x {
			x.Data = binary.LittleEndian.AppendUint32(x.Data, math.Float32bits(float32(v)))
		}
		lab.Data = tensor.AppendBytesElement(lab.Data, []byte(r.label))
	}
	return &core.Record{Model: model, Version: "1", Inputs: []*tensor.Tensor{x}, Outputs: []*tensor.Tensor{lab}, Items: len(rows)}
}

// gen draws n rows: x[0] ~ N(shift, 1), x[1] ~ U(0, 10), x[2] ∈ {0, 1, 2}, label from labels.
func gen(rng *rand.Rand, n int, shift float64, labels []string) []row {
	out := make([]row, n)
	for i := range out {
		out[i] = row{x: []float64{rng.NormFloat64() + shift, rng.Float64() * 10, float64(rng.IntN(3))}, label: labels[rng.IntN(len(labels))]}
	}
	return out
}

func csvOf(rows []row) string {
	var b strings.Builder
	b.WriteString("x[0],x[1],x[2],label\n")
	for _, r := range rows {
		for _, v := range r.x {
			b.WriteString(strconv.FormatFloat(float64(float32(v)), 'g', -1, 64) + ",")
		}
		b.WriteString(r.label + "\n")
	}
	return b.String()
}

// settle lets Run poll its queue (fake time in a synctest bubble) and waits until it
// has binned everything queued.
func settle() {
	time.Sleep(2 * pollEvery)
	synctest.Wait()
}

// feed sends rows in records of per rows, waiting for the binning goroutine now and
// then so the queue never overflows.
func feed(m *Monitor, model string, rows []row, per int) {
	for i := 0; i < len(rows); i += per {
		m.Finished(record(model, rows[i:min(i+per, len(rows))]))
		if (i/per)%256 == 255 {
			settle()
		}
	}
	settle()
}

func baselineFile(t *testing.T, rows []row) string {
	path := filepath.Join(t.TempDir(), "baseline.csv")
	if err := os.WriteFile(path, []byte(csvOf(rows)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// run starts m.Run in the bubble and returns a stop that ends it.
func run(t *testing.T, m *Monitor) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; m.Close() })
}

func feature(t *testing.T, r Report, name string) FeatureReport {
	t.Helper()
	for _, f := range r.Features {
		if f.Feature == name {
			return f
		}
	}
	t.Fatalf("report has no feature %q: %+v", name, r.Features)
	return FeatureReport{}
}

func TestMonitorDetectsShift(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	base := baselineFile(t, gen(rng, 5000, 0, []string{"a", "b", "c"}))
	synctest.Test(t, func(t *testing.T) {
		m, err := New(Config{Window: WindowConfig{Count: 2000}, MaxRowsPerSecond: -1, Models: map[string]ModelConfig{
			"iris": {Baseline: &BaselineSource{Path: base}},
		}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		run(t, m)
		if r, _ := m.Report("iris"); r.Status != StatusInsufficient || r.Closed {
			t.Errorf("before any window closed: status %q closed %v, want insufficient_data, not closed", r.Status, r.Closed)
		}
		feed(m, "iris", gen(rng, 2000, 0, []string{"a", "b", "c"}), 10)
		r, err := m.Report("iris")
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != StatusOK || r.Rows != 2000 || r.Drifted != 0 || r.DatasetDrift || r.Evaluated != 4 || r.Dropped != 0 {
			t.Fatalf("same distribution: %+v, want ok, 2000 rows, 4 evaluated, none drifted", r)
		}
		for name, method := range map[string]string{"x[0]": "wasserstein", "x[1]": "wasserstein", "x[2]": "jensenshannon", "label": "jensenshannon"} {
			if f := feature(t, r, name); f.Method != method || f.RefN != 5000 || f.CurN != 2000 {
				t.Errorf("%s: method %s n_ref %d n_cur %d, want %s (Evidently's choice for 5000 reference rows), 5000, 2000", name, f.Method, f.RefN, f.CurN, method)
			}
		}
		if !r.Closed || r.Start.IsZero() || r.End.Before(r.Start) {
			t.Errorf("window [%v, %v) closed %v: want a closed window with times", r.Start, r.End, r.Closed)
		}

		feed(m, "iris", gen(rng, 2000, 1, []string{"a", "d", "d", "d"}), 10)
		r, _ = m.Report("iris")
		if f := feature(t, r, "x[0]"); !f.Drifted || *f.Value < 0.5 {
			t.Errorf("x[0] shifted by one std: %+v, want drifted with normed W ≈ 1", f)
		}
		if f := feature(t, r, "label"); !f.Drifted || f.NewCategories < 1000 {
			t.Errorf("label mostly a new category: %+v, want drifted with ~1500 new-category values", f)
		}
		if f := feature(t, r, "x[1]"); f.Drifted {
			t.Errorf("x[1] unchanged: %+v, want no drift", f)
		}
		if v, drifted, ok := m.Value("iris", ""); !ok || v != 0.5 || !drifted {
			t.Errorf(`Value("iris", "") = %v, %v, %v; want share 0.5, dataset drift, ok`, v, drifted, ok)
		}
		if v, drifted, ok := m.Value("iris", "x[0]"); !ok || !drifted || v < 0.5 {
			t.Errorf(`Value("iris", "x[0]") = %v, %v, %v; want drifted`, v, drifted, ok)
		}
		if _, _, ok := m.Value("iris", "nope"); ok {
			t.Error(`Value of an unknown feature: want ok false`)
		}
		if _, err := m.Report("other"); err == nil {
			t.Error("Report of an unwatched model: want an error")
		}
	})
}

// The statistics computed from bins agree with the exact ones on the samples.
func TestBinnedStatisticsMatchSamples(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	refRows, curRows := gen(rng, 5000, 0, []string{"a"}), gen(rng, 1000, 0.4, []string{"a"})
	col := func(rows []row) []float64 {
		out := make([]float64, len(rows))
		for i, r := range rows {
			out[i] = float64(float32(r.x[0]))
		}
		return out
	}
	ref, cur := col(refRows), col(curRows)
	p, err := ProfileFromCSV(strings.NewReader(csvOf(refRows)), ProfileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	exactD, _, _ := statsKS(ref, cur)
	exactW, _ := statsNormedW(ref, cur)
	exactPSI, _ := statsPSIDeciles(ref, cur)
	for method, want := range map[string]struct{ v, tol float64 }{
		"ks": {exactD, 0.02}, "wasserstein": {exactW, 0.03}, "psi": {exactPSI, 0.02},
	} {
		t.Run(method, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m, err := New(Config{Window: WindowConfig{Count: 1000}, Models: map[string]ModelConfig{
					"m": {Features: map[string]FeatureConfig{"*": {Method: method}}}}}, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := m.SetBaseline("m", p); err != nil {
					t.Fatal(err)
				}
				run(t, m)
				feed(m, "m", curRows, 50)
				r, _ := m.Report("m")
				f := feature(t, r, "x[0]")
				got := *f.Value
				if method == "ks" {
					got = *f.Statistic
				}
				t.Logf("%s from bins %.5f, exact on samples %.5f", method, got, want.v)
				if math.Abs(got-want.v) > want.tol {
					t.Errorf("%s from bins = %.4f, exact on samples %.4f (tolerance %g)", method, got, want.v, want.tol)
				}
				if !f.Drifted {
					t.Errorf("%s: a 0.4 std shift over 1000 rows: %+v, want drift", method, f)
				}
			})
		})
	}
}

func TestEdgeCases(t *testing.T) {
	single := make([]row, 200)
	for i := range single {
		single[i] = row{x: []float64{1, float64(i), 0}, label: "a"}
	}
	p, err := ProfileFromCSV(strings.NewReader(csvOf(single)), ProfileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rowsOf := func(x0 float64, n int) []row {
		out := make([]row, n)
		for i := range out {
			out[i] = row{x: []float64{x0, float64(i), 0}, label: "a"}
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		x0      float64
		status  string
		drifted bool
		invalid int64
	}{
		{"single-valued feature, same value", 1, StatusOK, false, 0},
		{"single-valued feature, another value", 1.5, StatusOK, true, 0},
		{"all NaN is insufficient data", math.NaN(), StatusInsufficient, false, 100},
		{"+Inf is dropped and counted", math.Inf(1), StatusInsufficient, false, 100},
		{"-Inf is dropped and counted", math.Inf(-1), StatusInsufficient, false, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m, _ := New(Config{Window: WindowConfig{Count: 100}, Models: map[string]ModelConfig{"m": {}}}, nil)
				m.SetBaseline("m", p)
				run(t, m)
				feed(m, "m", rowsOf(tc.x0, 100), 10)
				r, _ := m.Report("m")
				f := feature(t, r, "x[0]")
				if f.Status != tc.status || f.Drifted != tc.drifted || f.Invalid != tc.invalid {
					t.Errorf("x[0] = %+v, want status %s, drifted %v, invalid %d", f, tc.status, tc.drifted, tc.invalid)
				}
				if _, err := json.Marshal(r); err != nil {
					t.Errorf("report does not marshal: %v", err)
				}
			})
		})
	}
	t.Run("empty window is insufficient data and valid JSON", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			m, _ := New(Config{Window: WindowConfig{Duration: Duration(time.Minute)}, Models: map[string]ModelConfig{"m": {}}}, nil)
			m.SetBaseline("m", p)
			run(t, m)
			time.Sleep(61 * time.Second)
			settle()
			r, _ := m.Report("m")
			b, err := json.Marshal(r)
			if err != nil || r.Status != StatusInsufficient || !r.Closed || r.Rows != 0 || strings.Contains(string(b), "NaN") {
				t.Errorf("empty closed window: %s (err %v), want insufficient_data", b, err)
			}
			if got := r.End.Sub(r.Start); got != time.Minute {
				t.Errorf("window [%v, %v) spans %v, want 1m", r.Start, r.End, got)
			}
		})
	})
}

// Above 10 000 rows a side, KS takes the asymptotic p-value.
func TestKSLargeWindowIsAsymptotic(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	p, err := ProfileFromCSV(strings.NewReader(csvOf(gen(rng, 20000, 0, []string{"a"}))), ProfileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		m, _ := New(Config{Window: WindowConfig{Count: 12000}, MaxRowsPerSecond: -1, Models: map[string]ModelConfig{
			"m": {Features: map[string]FeatureConfig{"x[0]": {Method: "ks"}}}}}, nil)
		m.SetBaseline("m", p)
		run(t, m)
		feed(m, "m", gen(rng, 12000, 0.05, []string{"a"}), 100)
		r, _ := m.Report("m")
		f := feature(t, r, "x[0]")
		if want := statsKSAsymptotic(*f.Statistic, 20000, 12000); *f.Value != want {
			t.Errorf("KS p for 20000 vs 12000 = %g, want the asymptotic %g", *f.Value, want)
		}
	})
}

// PSI on a window too small for its threshold says so.
func TestPSISmallSampleWarning(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	p, _ := ProfileFromCSV(strings.NewReader(csvOf(gen(rng, 5000, 0, []string{"a"}))), ProfileOptions{})
	for _, tc := range []struct {
		window int64
		warn   bool
	}{{50, true}, {2000, false}} {
		synctest.Test(t, func(t *testing.T) {
			m, _ := New(Config{Window: WindowConfig{Count: tc.window}, Models: map[string]ModelConfig{
				"m": {Features: map[string]FeatureConfig{"*": {Method: "psi"}}}}}, nil)
			m.SetBaseline("m", p)
			run(t, m)
			feed(m, "m", gen(rng, int(tc.window), 0, []string{"a"}), 10)
			r, _ := m.Report("m")
			if f := feature(t, r, "x[0]"); (f.Warning != "") != tc.warn {
				t.Errorf("PSI over a %d-row window: warning %q, want one: %v", tc.window, f.Warning, tc.warn)
			}
		})
	}
}

// TestUploadStartsWatching: a baseline for a model the configuration does not name
// makes it watched, with default methods, while other models' traffic goes on.
func TestUploadStartsWatching(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, err := New(Config{Window: WindowConfig{Count: 500}, Models: map[string]ModelConfig{}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		run(t, m)
		rng := rand.New(rand.NewPCG(7, 7))
		if _, err := m.Report("late"); !errors.Is(err, ErrUnknownModel) {
			t.Fatalf("report of an unwatched model: %v, want ErrUnknownModel", err)
		}
		feed(m, "late", gen(rng, 100, 0, []string{"a"}), 10) // not watched yet: ignored
		p, err := ProfileFromCSV(strings.NewReader(csvOf(gen(rng, 2000, 0, []string{"a", "b"}))), ProfileOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.SetBaseline("late", p); err != nil {
			t.Fatal(err)
		}
		feed(m, "late", gen(rng, 500, 3, []string{"a", "b"}), 10)
		r, err := m.Report("late")
		if err != nil {
			t.Fatal(err)
		}
		if _, drifted, ok := m.Value("late", "x[0]"); r.Rows != 500 || !drifted || !ok {
			t.Errorf("after a 3σ shift of x[0]: rows %d, x[0] drifted %v (ok %v), want 500 and true", r.Rows, drifted, ok)
		}
		if names := m.names(); len(names) != 1 || names[0] != "late" {
			t.Errorf("watched %v", names)
		}
	})
}

// boundedMonitor runs a monitor of model "m" (one feature, "a") under a rows-per-second
// bound, with the random source that made its baseline.
func boundedMonitor(t *testing.T, limit int64, seed uint64) (*Monitor, *rand.Rand) {
	t.Helper()
	m, err := New(Config{Window: WindowConfig{Count: 100_000}, MaxRowsPerSecond: limit, Models: map[string]ModelConfig{"m": {}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, seed))
	p, _ := ProfileFromCSV(strings.NewReader(csvOf(gen(rng, 500, 0, []string{"a"}))), ProfileOptions{})
	m.SetBaseline("m", p)
	run(t, m)
	return m, rng
}

// TestBurstsUnderTheBoundAreKept: bursts of traffic that stay under
// max_rows_per_second in every second are binned whole, however fast each comes (the
// README's drift walkthrough sends 1000 requests in ~60 ms, twice, a second apart).
func TestBurstsUnderTheBoundAreKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, rng := boundedMonitor(t, 2000, 5)
		burst := func() { // 1000 one-row records over 60 ms
			for i := range 1000 {
				m.Finished(record("m", gen(rng, 1, 0, []string{"a"})))
				if i%50 == 49 {
					time.Sleep(3 * time.Millisecond)
				}
			}
			settle()
		}
		burst()
		time.Sleep(300 * time.Millisecond)
		burst()
		if r, _ := m.ReportCurrent("m"); r.Rows != 2000 || r.SampledOut != 0 {
			t.Fatalf("two bursts of 1000 rows 0.3 s apart under a bound of 2000 a second: %d rows kept, %d sampled out; want all kept", r.Rows, r.SampledOut)
		}
	})
}

// TestRowsPerSecondAreCapped: a model offered ten times its max_rows_per_second keeps
// a second's budget and then that rate (about 200 + 200 rows of the first second's
// 2000, 200 of the second's), and counts the rest.
func TestRowsPerSecondAreCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, rng := boundedMonitor(t, 200, 3)
		second := func() { // 2000 rows over one second, in records of 10
			for range 200 {
				m.Finished(record("m", gen(rng, 10, 0, []string{"a"})))
				time.Sleep(5 * time.Millisecond)
			}
			settle()
		}
		second() // the bucket's 200 rows, then 200 a second
		r1, _ := m.ReportCurrent("m")
		second()
		r2, _ := m.ReportCurrent("m")
		t.Logf("rows kept: first second %d, second second %d", r1.Rows, r2.Rows-r1.Rows)
		if first := r1.Rows; first < 350 || first > 450 {
			t.Errorf("first second: %d of 2000 rows kept, want a second's budget and a second's rate (about 400)", first)
		}
		if kept := r2.Rows - r1.Rows; r2.Rows+int64(r2.SampledOut) != 4000 || kept < 180 || kept > 220 {
			t.Fatalf("rows %d, sampled out %d: in the second second %d of 2000 rows kept, want about 200", r2.Rows, r2.SampledOut, kept)
		}
	})
}
