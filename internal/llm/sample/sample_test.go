package sample

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"

	"github.com/ferryml/ferry/internal/llm"
)

func seeded(p llm.Sampling, seed int64) llm.Sampling {
	p.Seed = &seed
	return p
}

func TestGreedy(t *testing.T) {
	s := New(llm.Sampling{Temperature: 0, TopP: 1, RepetitionPenalty: 1}, nil, -1)
	for _, tc := range []struct {
		logits []float32
		want   int
	}{
		{[]float32{0.1, 3, -1, 2.9}, 1},
		{[]float32{5, 1, 5}, 0}, // ties go to the lowest id
		{[]float32{-3, -2, -2.5}, 1},
	} {
		if got := s.Next(tc.logits).ID; got != tc.want {
			t.Errorf("Next(%v).ID = %d, want %d", tc.logits, got, tc.want)
		}
	}
}

func draws(p llm.Sampling, logits []float32, n int) []int {
	s := New(p, nil, -1)
	out := make([]int, n)
	for i := range out {
		out[i] = s.Next(logits).ID
	}
	return out
}

func TestSeedRepeats(t *testing.T) {
	logits := make([]float32, 1000)
	for i := range logits {
		logits[i] = float32(i%17) / 4
	}
	p := llm.DefaultSampling()
	a, b := draws(seeded(p, 42), logits, 50), draws(seeded(p, 42), logits, 50)
	if !slices.Equal(a, b) {
		t.Errorf("seed 42 drew %v then %v", a, b)
	}
	if c := draws(seeded(p, 43), logits, 50); slices.Equal(a, c) {
		t.Errorf("seeds 42 and 43 drew the same %v", a)
	}
}

// TestFrequencies draws from a small distribution and checks the counts against
// softmax(logits/T) with a chi-square test (fixed seed, so it cannot flake).
func TestFrequencies(t *testing.T) {
	logits := []float32{1, 2, 0.5, -1, 1.5}
	p := llm.DefaultSampling()
	p.Temperature = 0.7
	chiSquare(t, p, logits, softmax(logits, 0.7))
	// Top-k 3 renormalises over ids 1, 4 and 0.
	p.TopK = 3
	want := softmax([]float32{1, 2, float32(math.Inf(-1)), float32(math.Inf(-1)), 1.5}, 0.7)
	chiSquare(t, p, logits, want)
}

// chiSquare draws 100000 tokens and checks the counts against want with a
// chi-square test (fixed seed, so it cannot flake) over the ids want gives mass to;
// an id with no mass must never be drawn.
func chiSquare(t *testing.T, p llm.Sampling, logits []float32, want []float64) {
	t.Helper()
	const n = 100000
	counts := make([]int, len(logits))
	for _, id := range draws(seeded(p, 7), logits, n) {
		counts[id]++
	}
	var chi2 float64
	df := -1
	for i, c := range counts {
		e := want[i] * n
		if e == 0 {
			if c != 0 {
				t.Errorf("id %d has no mass but was drawn %d times", i, c)
			}
			continue
		}
		df++
		chi2 += (float64(c) - e) * (float64(c) - e) / e
	}
	// P(chi2 > x) = 0.001 for df = 1..4.
	crit := []float64{0, 10.83, 13.82, 16.27, 18.47}[df]
	if chi2 > crit {
		t.Errorf("counts %v against expected %v: chi2 = %.2f > %.2f (df %d)", counts, want, chi2, crit, df)
	}
}

func softmax(logits []float32, temp float64) []float64 {
	out := make([]float64, len(logits))
	var z float64
	for i, v := range logits {
		out[i] = math.Exp(float64(v) / temp)
		z += out[i]
	}
	for i := range out {
		out[i] /= z
	}
	return out
}

// support is the set of ids drawn in many draws.
func support(p llm.Sampling, logits []float32) []int {
	seen := map[int]bool{}
	for _, id := range draws(seeded(p, 1), logits, 4000) {
		seen[id] = true
	}
	var ids []int
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func TestTruncationSupport(t *testing.T) {
	// probabilities at T=1: log of 0.4, 0.3, 0.15, 0.1, 0.05
	logits := []float32{}
	for _, q := range []float64{0.1, 0.4, 0.05, 0.3, 0.15} {
		logits = append(logits, float32(math.Log(q)))
	}
	for _, tc := range []struct {
		name string
		set  func(*llm.Sampling)
		want []int
	}{
		{"no truncation keeps all", func(*llm.Sampling) {}, []int{0, 1, 2, 3, 4}},
		{"top-k 2", func(p *llm.Sampling) { p.TopK = 2 }, []int{1, 3}},
		{"top-k 1", func(p *llm.Sampling) { p.TopK = 1 }, []int{1}},
		{"top-p 0.5 keeps 0.4 and 0.3", func(p *llm.Sampling) { p.TopP = 0.5 }, []int{1, 3}},
		{"top-p 0.7 is reached exactly by 0.4+0.3", func(p *llm.Sampling) { p.TopP = 0.69 }, []int{1, 3}},
		{"top-p 0.71 needs 0.15 too", func(p *llm.Sampling) { p.TopP = 0.71 }, []int{1, 3, 4}},
		{"top-p tiny keeps the best", func(p *llm.Sampling) { p.TopP = 1e-9 }, []int{1}},
		{"min-p 0.3 keeps p >= 0.12", func(p *llm.Sampling) { p.MinP = 0.3 }, []int{1, 3, 4}},
		{"min-p 0.24 keeps p >= 0.096", func(p *llm.Sampling) { p.MinP = 0.24 }, []int{0, 1, 3, 4}},
		{"top-k 3 then top-p 0.8 of the renormalised 0.85", func(p *llm.Sampling) { p.TopK = 3; p.TopP = 0.8 }, []int{1, 3}},
		{"top-k 4 then min-p 0.5", func(p *llm.Sampling) { p.TopK = 4; p.MinP = 0.5 }, []int{1, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := llm.DefaultSampling()
			tc.set(&p)
			if got := support(p, logits); !slices.Equal(got, tc.want) {
				t.Errorf("support = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTopPLargeVocabulary(t *testing.T) {
	// Shuffled distinct logits over a real vocabulary size: the select must keep
	// exactly the best prefix whose mass reaches p.
	const v = 50257
	r := rand.New(rand.NewPCG(3, 4))
	logits := make([]float32, v)
	for i := range logits {
		logits[i] = float32(r.NormFloat64() * 3)
	}
	p := seeded(llm.DefaultSampling(), 5)
	p.TopP = 0.9
	s := New(p, nil, -1)
	s.Next(logits)
	kept := map[int32]bool{}
	for _, x := range s.kept {
		kept[x.id] = true
	}
	order := make([]int, v)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(logits[b], logits[a]) })
	pr := softmax(logits, 1)
	var acc float64
	for rank, id := range order {
		want := acc < 0.9*(1-1e-12)
		if kept[int32(id)] != want && math.Abs(acc-0.9) > 1e-9 {
			t.Fatalf("rank %d id %d (mass before %.6f): kept=%v, want %v", rank, id, acc, kept[int32(id)], want)
		}
		acc += pr[id]
	}
}

func TestTopKLargeVocabulary(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	logits := make([]float32, 50257)
	for i := range logits {
		logits[i] = float32(r.NormFloat64())
	}
	p := seeded(llm.DefaultSampling(), 5)
	p.TopK, p.Temperature = 100, 0.7
	s := New(p, nil, -1)
	s.Next(logits)
	best := slices.Clone(logits)
	slices.Sort(best)
	kth := best[len(best)-100]
	if len(s.kept) != 100 {
		t.Fatalf("kept %d ids, want 100", len(s.kept))
	}
	for _, x := range s.kept {
		if logits[x.id] < kth {
			t.Errorf("kept id %d with logit %v below the 100th best %v", x.id, logits[x.id], kth)
		}
	}
}

func TestPenaltyArithmetic(t *testing.T) {
	p := llm.Sampling{Temperature: 0, RepetitionPenalty: 2, PresencePenalty: 0.5, FrequencyPenalty: 0.25,
		LogitBias: map[int]float64{5: 1, 99: 3}}
	s := New(p, []int{0, 1}, -1)
	for _, id := range []int{2, 2, 3} {
		s.Accept(id)
	}
	got := slices.Clone(s.adjust([]float32{4, -4, 6, -1, 2, 0.5}))
	// id 0: prompt, 4>0 -> 2; id 1: prompt, -4 -> -8; id 2: output twice, 6/2=3, -0.5-0.5 -> 2;
	// id 3: once, -1*2=-2, -0.5-0.25 -> -2.75; id 4 untouched; id 5: bias +1 -> 1.5.
	want := []float32{2, -8, 2, -2.75, 2, 1.5}
	if !slices.Equal(got, want) {
		t.Errorf("adjusted logits = %v, want %v", got, want)
	}
}

func TestMinTokens(t *testing.T) {
	logits := []float32{0, 10, 9, 1} // eos=1 and stop token 2 are the best
	p := llm.Sampling{Temperature: 0, RepetitionPenalty: 1, MinTokens: 2, StopTokenIDs: []int{2}}
	s := New(p, nil, 1)
	for step, want := range []int{3, 3, 1} {
		if got := s.Next(logits).ID; got != want {
			t.Fatalf("step %d: Next = %d, want %d", step, got, want)
		}
		s.Accept(3)
	}
}

func TestLogprobs(t *testing.T) {
	logits := []float32{1, 3, 2, -1, 0.5}
	p := llm.Sampling{Temperature: 0, RepetitionPenalty: 2, WantLogprobs: true, Logprobs: 3, LogitBias: map[int]float64{0: 10}}
	s := New(p, []int{1}, -1)
	tok := s.Next(logits)
	if tok.ID != 0 {
		t.Fatalf("ID = %d, want 0 (biased)", tok.ID)
	}
	raw := softmax(logits, 1)
	if got, want := float64(tok.Logprob), math.Log(raw[0]); math.Abs(got-want) > 1e-5 {
		t.Errorf("Logprob = %v, want %v (raw logits, before bias and penalty)", got, want)
	}
	if ids := []int{tok.Top[0].ID, tok.Top[1].ID, tok.Top[2].ID}; !slices.Equal(ids, []int{1, 2, 0}) {
		t.Errorf("Top ids = %v, want [1 2 0]", ids)
	}
	// Sampled tokens report the raw log-softmax too, whatever the temperature (at 1
	// it comes from the draw's own sum).
	for _, temp := range []float64{1, 0.5} {
		s := New(seeded(llm.Sampling{Temperature: temp, TopP: 0.9, RepetitionPenalty: 1, WantLogprobs: true}, 3), nil, -1)
		for range 20 {
			tok := s.Next(logits)
			if got, want := float64(tok.Logprob), math.Log(raw[tok.ID]); math.Abs(got-want) > 1e-5 {
				t.Errorf("T=%v: id %d Logprob = %v, want %v", temp, tok.ID, got, want)
			}
		}
	}
	// Asked for every alternative, the probabilities must sum to one.
	all := New(llm.Sampling{Temperature: 0, RepetitionPenalty: 1, WantLogprobs: true, Logprobs: len(logits)}, nil, -1).Next(logits)
	var total float64
	for _, a := range all.Top {
		total += math.Exp(float64(a.Logprob))
	}
	if len(all.Top) != len(logits) || math.Abs(total-1) > 1e-5 {
		t.Errorf("%d alternatives with probabilities summing to %v, want %d summing to 1", len(all.Top), total, len(logits))
	}
	for _, a := range tok.Top {
		if math.Abs(float64(a.Logprob)-math.Log(raw[a.ID])) > 1e-5 {
			t.Errorf("Top %d logprob %v, want %v", a.ID, a.Logprob, math.Log(raw[a.ID]))
		}
	}
	// Unasked, the logprob is not computed: the same pick, Logprob 0.
	if got := New(llm.Sampling{Temperature: 0, RepetitionPenalty: 1}, nil, -1).Next(logits); got.ID != 1 || got.Logprob != 0 || got.Top != nil {
		t.Errorf("without WantLogprobs: %+v, want {ID:1 Logprob:0 Top:[]}", got)
	}
}

func TestBucketEdges(t *testing.T) {
	for k := 7; k < nBuckets-1; k++ {
		lo := lowEdge(k)
		if bucket(lo) != k || bucket(math.Nextafter(lo, 0)) != k+1 {
			t.Fatalf("bucket %d: low edge %g is in bucket %d, the value below it in %d", k, lo, bucket(lo), bucket(math.Nextafter(lo, 0)))
		}
	}
	if bucket(1) != 7 || bucket(0) != nBuckets-1 || lowEdge(nBuckets-1) != 0 {
		t.Errorf("bucket(1) = %d, bucket(0) = %d", bucket(1), bucket(0))
	}
}

func TestNoAllocations(t *testing.T) {
	logits := benchLogits()
	for _, p := range []llm.Sampling{
		{Temperature: 0, RepetitionPenalty: 1.1, PresencePenalty: 0.5},
		{Temperature: 0.8, TopP: 0.9, TopK: 50, MinP: 0.05, RepetitionPenalty: 1},
	} {
		s := New(seeded(p, 1), []int{1, 2, 3}, 50256)
		s.Next(logits)
		if n := testing.AllocsPerRun(20, func() { s.Next(logits) }); n != 0 {
			t.Errorf("%+v: Next allocates %v times per call", p, n)
		}
	}
}

func benchLogits() []float32 {
	r := rand.New(rand.NewPCG(1, 2))
	l := make([]float32, 50257)
	for i := range l {
		l[i] = float32(r.NormFloat64() * 2)
	}
	return l
}

func BenchmarkNext(b *testing.B) {
	logits := benchLogits()
	for _, bc := range []struct {
		name string
		p    llm.Sampling
	}{
		{"greedy", llm.Sampling{Temperature: 0, RepetitionPenalty: 1}},
		{"greedy_penalties", llm.Sampling{Temperature: 0, RepetitionPenalty: 1.1, FrequencyPenalty: 0.2}},
		{"temperature", llm.Sampling{Temperature: 0.8, TopP: 1, RepetitionPenalty: 1}},
		{"top_p", llm.Sampling{Temperature: 0.8, TopP: 0.9, RepetitionPenalty: 1}},
		{"top_k_top_p_min_p", llm.Sampling{Temperature: 0.8, TopK: 50, TopP: 0.9, MinP: 0.05, RepetitionPenalty: 1}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := New(seeded(bc.p, 1), make([]int, 100), 50256)
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				s.Next(logits)
			}
			// The machine is shared: CPU time per call says what wall time cannot.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the process's user and system CPU time in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
