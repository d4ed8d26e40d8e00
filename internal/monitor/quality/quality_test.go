package quality

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memLog is a real in-memory inference log: predictions become visible when flushed.
type memLog struct {
	mu      sync.Mutex
	byModel map[string]map[string]Prediction
	lookups int
}

func newMemLog() *memLog { return &memLog{byModel: map[string]map[string]Prediction{}} }

func (l *memLog) put(id string, p Prediction) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byModel[p.Model] == nil {
		l.byModel[p.Model] = map[string]Prediction{}
	}
	l.byModel[p.Model][id] = p
}

func (l *memLog) Lookup(ctx context.Context, model string, ids []string) (map[string]Prediction, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lookups++
	out := map[string]Prediction{}
	for _, id := range ids {
		if p, ok := l.byModel[model][id]; ok {
			out[id] = p
		}
	}
	return out, nil
}

// served is one logged request and its true answer.
type served struct {
	id      string
	version string
	out     []float64
	class   int
	value   float64
}

// traffic makes n predictions of model, half per version, with scores rounded to
// 0.05 so ties occur, and truths correlated with the scores.
func traffic(model string, n, classes int, at time.Time, r *rand.Rand) []served {
	out := make([]served, n)
	for i := range out {
		s := served{id: fmt.Sprintf("%s-%d", model, i), version: []string{"1", "2"}[i%2]}
		switch classes {
		case 0: // regression
			s.value = r.NormFloat64()
			s.out = []float64{s.value + r.NormFloat64()*0.3}
		default:
			s.class = r.IntN(classes)
			row := make([]float64, classes)
			for c := range row {
				row[c] = math.Round(r.Float64()*20) / 20
			}
			if r.Float64() < 0.6 { // a useful but imperfect model
				row[s.class] += 0.5
			}
			s.out = row
		}
		out[i] = s
	}
	_ = at
	return out
}

func labelOf(s served, classes int) Label {
	if classes == 0 {
		v := s.value
		return Label{ID: s.id, Value: &v}
	}
	return Label{ID: s.id, Class: &Class{Index: s.class}}
}

// TestFeedbackJoinMatchesIndependentComputation logs 10,000 predictions per model,
// sends labels in bulk calls (some before their prediction is flushed, some wrong
// then corrected, some only after the metrics were first computed) and checks every
// metric against a computation written another way.
func TestFeedbackJoinMatchesIndependentComputation(t *testing.T) {
	ctx := context.Background()
	log := newMemLog()
	s, err := New(t.TempDir(), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := rand.New(rand.NewPCG(1, 2))
	at := time.Now().Add(-30 * time.Minute)
	for _, tc := range []struct {
		model   string
		classes int
	}{{"binary", 2}, {"multi", 4}, {"reg", 0}, {"onecol", 1}} {
		t.Run(tc.model, func(t *testing.T) {
			k := tc.classes
			all := traffic(tc.model, 10_000, max(k, 0), at, r)
			if k == 1 { // one column: the positive-class score, truth 0 or 1
				for i := range all {
					all[i].class = r.IntN(2)
					all[i].out = []float64{math.Round((0.3*r.Float64()+0.4*float64(all[i].class)+0.3*r.Float64())*20) / 20}
				}
			}
			for i, p := range all[:8000] { // the rest is flushed later
				log.put(p.id, Prediction{Model: tc.model, Version: p.version, Time: at.Add(time.Duration(i) * time.Millisecond), Outputs: p.out})
			}
			// Labels for 9,000 requests in three calls; the first 500 first wrong.
			var wrong []Label
			for _, p := range all[:500] {
				l := labelOf(p, k)
				if l.Value != nil {
					v := *l.Value + 10
					l.Value = &v
				} else {
					l.Class = &Class{Index: (l.Class.Index + 1) % max(k, 2)}
				}
				wrong = append(wrong, l)
			}
			add(t, s, tc.model, wrong)
			for lo := 0; lo < 9000; lo += 3000 {
				var ls []Label
				for _, p := range all[lo : lo+3000] {
					ls = append(ls, labelOf(p, k))
				}
				add(t, s, tc.model, ls)
			}
			ms, err := s.Metrics(ctx, Query{Model: tc.model})
			if err != nil {
				t.Fatal(err)
			}
			check(t, ms, all[:8000], k, 1000)
			// The rest of the log is flushed, and the last labels arrive late.
			for i, p := range all[8000:] {
				log.put(p.id, Prediction{Model: tc.model, Version: p.version, Time: at.Add(time.Duration(8000+i) * time.Millisecond), Outputs: p.out})
			}
			var late []Label
			for _, p := range all[9000:] {
				late = append(late, labelOf(p, k))
			}
			add(t, s, tc.model, late)
			ms, err = s.Metrics(ctx, Query{Model: tc.model})
			if err != nil {
				t.Fatal(err)
			}
			check(t, ms, all, k, 0)
		})
	}
}

func add(t *testing.T, s *Store, model string, ls []Label) {
	t.Helper()
	n, err := s.Add(context.Background(), model, ls)
	if err != nil || n != len(ls) {
		t.Fatalf("Add(%s, %d labels) = %d, %v", model, len(ls), n, err)
	}
}

// check compares ms with the independent computation over want, per version.
func check(t *testing.T, ms []Metrics, want []served, k, unmatched int) {
	t.Helper()
	if len(ms) != 2 {
		t.Fatalf("got %d Metrics, want one per version: %+v", len(ms), ms)
	}
	for _, m := range ms {
		var mine []served
		for _, s := range want {
			if s.version == m.Version {
				mine = append(mine, s)
			}
		}
		if m.Labelled != len(mine) || m.Unmatched != unmatched || m.Skipped != 0 {
			t.Errorf("version %s: labelled %d unmatched %d skipped %d, want %d, %d, 0", m.Version, m.Labelled, m.Unmatched, m.Skipped, len(mine), unmatched)
		}
		exp := independent(mine, k)
		for name, w := range exp {
			if g, ok := m.Values[name]; !ok || math.Abs(g-w) > 1e-9 {
				t.Errorf("version %s: %s = %v (present %v), want %v", m.Version, name, g, ok, w)
			}
		}
		if len(m.Values) != len(exp) {
			t.Errorf("version %s: values %v, want the keys of %v", m.Version, m.Values, exp)
		}
	}
}

// independent computes the metrics by definition: pairwise comparisons for the AUC,
// F1 as the harmonic mean of precision and recall per class.
func independent(ss []served, k int) map[string]float64 {
	if k == 0 {
		var abs, sq float64
		for _, s := range ss {
			abs += math.Abs(s.out[0] - s.value)
			sq += (s.out[0] - s.value) * (s.out[0] - s.value)
		}
		n := float64(len(ss))
		return map[string]float64{MAE: abs / n, RMSE: math.Sqrt(sq / n)}
	}
	classes := max(k, 2)
	pred := func(s served) int {
		if len(s.out) == 1 {
			if s.out[0] >= 0.5 {
				return 1
			}
			return 0
		}
		b := 0
		for c := 1; c < len(s.out); c++ {
			if s.out[c] > s.out[b] {
				b = c
			}
		}
		return b
	}
	right := 0
	for _, s := range ss {
		if pred(s) == s.class {
			right++
		}
	}
	out := map[string]float64{Accuracy: float64(right) / float64(len(ss))}
	perClass := func(c int) (p, r, f float64, seen bool) {
		var tp, predC, trueC float64
		for _, s := range ss {
			if pred(s) == c {
				predC++
			}
			if s.class == c {
				trueC++
			}
			if pred(s) == c && s.class == c {
				tp++
			}
		}
		if predC > 0 {
			p = tp / predC
		}
		if trueC > 0 {
			r = tp / trueC
		}
		if p+r > 0 {
			f = 2 * p * r / (p + r)
		}
		return p, r, f, predC+trueC > 0
	}
	// auc counts, for each positive, the negatives scored below it (and half those
	// tied), by binary search in the sorted negative scores.
	auc := func(score func(served) float64, pos func(served) bool) float64 {
		var ps, ns []float64
		for _, x := range ss {
			if pos(x) {
				ps = append(ps, score(x))
			} else {
				ns = append(ns, score(x))
			}
		}
		slices.Sort(ns)
		var num float64
		for _, p := range ps {
			below, _ := slices.BinarySearch(ns, p)
			upto := below
			for upto < len(ns) && ns[upto] == p {
				upto++
			}
			num += float64(below) + float64(upto-below)/2
		}
		return num / float64(len(ps)*len(ns))
	}
	if classes == 2 {
		out[Precision], out[Recall], out[F1], _ = perClass(1)
		col := len(ss[0].out) - 1
		out[ROCAUC] = auc(func(s served) float64 { return s.out[col] }, func(s served) bool { return s.class == 1 })
		return out
	}
	var seen, aucs float64
	for c := range classes {
		p, r, f, ok := perClass(c)
		if ok {
			seen++
			out[Precision] += p
			out[Recall] += r
			out[F1] += f
		}
		aucs += auc(func(s served) float64 { return s.out[c] }, func(s served) bool { return s.class == c })
	}
	out[Precision] /= seen
	out[Recall] /= seen
	out[F1] /= seen
	out[ROCAUC] = aucs / float64(classes)
	return out
}

func TestBadFeedbackIsRefusedNamingWhatIsWrong(t *testing.T) {
	s, err := New(t.TempDir(), newMemLog(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v, nan := 1.0, math.NaN()
	for _, tc := range []struct {
		name, model string
		labels      []Label
		want        string
	}{
		{"no model", "", []Label{{ID: "a", Value: &v}}, "the model is empty"},
		{"no id", "m", []Label{{Value: &v}}, "labels[0] (id \"\"): the id is empty"},
		{"neither", "m", []Label{{ID: "a"}}, `labels[0] (id "a"): neither "label"`},
		{"both", "m", []Label{{ID: "a", Value: &v, Class: &Class{}}}, `both "label" and "value"`},
		{"nan", "m", []Label{{ID: "a", Value: &nan}}, "not a finite number"},
		{"long id", "m", []Label{{ID: strings.Repeat("x", 300), Value: &v}}, "over the 256-byte limit"},
		{"too many", "m", make([]Label, MaxLabelsPerCall+1), "over the limit of 100000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := s.Add(context.Background(), tc.model, tc.labels)
			if n != 0 || err == nil || !strings.Contains(err.Error(), tc.want) || !errorsIs(err) {
				t.Fatalf("Add = %d, %v; want 0 and an ErrInvalid containing %q", n, err, tc.want)
			}
		})
	}
}
