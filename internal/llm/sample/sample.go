package sample

import (
	"math"
	"math/rand/v2"

	"github.com/ferryml/ferry/internal/llm"
)

// Token is one sampled id and, when Sampling.WantLogprobs asks for them, its log
// probability under the model's distribution (the logits before any penalty,
// temperature or truncation, as vLLM reports them) and the Sampling.Logprobs best
// alternatives. Unasked, Logprob is 0: the log-softmax is a pass of exponentials over
// the vocabulary, ~0.2 ms a row at GPT-2's 50,257, 4% of a batch-8 decode step.
type Token struct {
	ID      int
	Logprob float32
	Top     []Alt
}

// Alt is an alternative at one position.
type Alt struct {
	ID      int
	Logprob float32
}

// samplingEps is vLLM's _SAMPLING_EPS: a temperature below it is greedy.
const samplingEps = 1e-5

// Sampler picks tokens for one sequence. It is not safe for concurrent use: a
// sequence owns one. Its buffers grow to the vocabulary on the first Next and are
// reused, so later calls do not allocate (except Token.Top, which the caller keeps).
type Sampler struct {
	p      llm.Sampling
	eos    int
	rng    *rand.Rand
	seen   map[int]bool // prompt ∪ output ids, for the repetition penalty (nil when it is off)
	seenID []int        // the keys of seen, in the order they came
	counts map[int]int  // output ids and how often each came
	outID  []int        // the keys of counts, in the order they came
	n      int          // tokens accepted

	work  []float32         // the logits after bias and penalties
	prob  []float64         // unnormalised probabilities exp((work-max)/T)
	mass  [nBuckets]float64 // the probability in each bucket (see bucket)
	count [nBuckets]int32   // the ids in each bucket
	cand  []cand            // the ids the truncations may keep, with their probability
	kept  []cand            // the support of the last truncated draw (a prefix of cand), for tests
	pivot uint64            // state of the quickselect pivot choice (not the draw source)
}

// New returns a Sampler for a sequence whose prompt is prompt, under p; eos is the
// vocabulary's end-of-sequence id (-1 for none). Without p.Seed the source is seeded
// at random.
func New(p llm.Sampling, prompt []int, eos int) *Sampler {
	seed := rand.Uint64()
	if p.Seed != nil {
		seed = uint64(*p.Seed)
	}
	s := &Sampler{p: p, eos: eos, rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)),
		counts: map[int]int{}, pivot: 0x2545f4914f6cdd1d}
	if s.repetition() {
		s.seen = make(map[int]bool, len(prompt))
		for _, id := range prompt {
			s.see(id)
		}
	}
	return s
}

func (s *Sampler) repetition() bool {
	return s.p.RepetitionPenalty > 0 && s.p.RepetitionPenalty != 1
}

func (s *Sampler) see(id int) {
	if !s.seen[id] {
		s.seen[id] = true
		s.seenID = append(s.seenID, id)
	}
}

// Accept records that id was emitted, for the penalties and min_tokens of later steps.
func (s *Sampler) Accept(id int) {
	if s.counts[id] == 0 {
		s.outID = append(s.outID, id)
	}
	s.counts[id]++
	s.n++
	if s.seen != nil {
		s.see(id)
	}
}

// Next picks the next token from logits (one per vocabulary id), in vLLM's order:
// logit bias, min_tokens, repetition penalty, presence and frequency penalties,
// temperature (below 1e-5: greedy, ties to the lowest id), top-k, top-p, min-p, then a
// draw from the seeded source. logits is not changed.
func (s *Sampler) Next(logits []float32) Token {
	if len(logits) == 0 {
		return Token{ID: -1, Logprob: float32(math.Inf(-1))}
	}
	w := s.adjust(logits)
	top := argmax(logits) // shared by the greedy pick and the log-softmax
	raw := &w[0] == &logits[0]
	id, lse := top, float32(math.NaN())
	switch {
	case s.p.Temperature >= samplingEps && raw:
		var z float64
		id, z = s.draw(w, logits[top])
		if s.p.Temperature == 1 && z > 0 {
			// The draw's probabilities were the raw softmax's: its sum gives the
			// log-softmax without another pass over the vocabulary.
			lse = logits[top] + float32(math.Log(z))
		}
	case s.p.Temperature >= samplingEps:
		id, _ = s.draw(w, w[argmax(w)])
	case !raw:
		id = argmax(w)
	}
	if !s.p.WantLogprobs {
		return Token{ID: id}
	}
	if math.IsNaN(float64(lse)) {
		lse = logSumExp(logits, logits[top])
	}
	t := Token{ID: id, Logprob: logits[id] - lse}
	if s.p.Logprobs > 0 {
		t.Top = topAlts(logits, s.p.Logprobs, lse)
	}
	return t
}

// adjust returns logits after bias, min_tokens and the penalties: logits itself
// when none applies, else a copy in s.work.
func (s *Sampler) adjust(logits []float32) []float32 {
	minTok := s.n < s.p.MinTokens && (s.eos >= 0 || len(s.p.StopTokenIDs) > 0)
	pen := s.p.PresencePenalty != 0 || s.p.FrequencyPenalty != 0
	if len(s.p.LogitBias) == 0 && !minTok && !s.repetition() && !pen {
		return logits
	}
	if cap(s.work) < len(logits) {
		s.work = make([]float32, len(logits))
	}
	w := s.work[:len(logits)]
	copy(w, logits)
	for id, b := range s.p.LogitBias {
		if id >= 0 && id < len(w) {
			w[id] += float32(b)
		}
	}
	if minTok {
		s.suppressStops(w)
	}
	if s.repetition() {
		r := float32(s.p.RepetitionPenalty)
		for _, id := range s.seenID {
			if id < 0 || id >= len(w) {
				continue
			}
			if w[id] > 0 {
				w[id] /= r
			} else {
				w[id] *= r
			}
		}
	}
	if pen {
		for _, id := range s.outID {
			if id >= 0 && id < len(w) {
				w[id] -= float32(s.p.FrequencyPenalty*float64(s.counts[id]) + s.p.PresencePenalty)
			}
		}
	}
	return w
}

// suppressStops makes end-of-sequence and the stop token ids impossible, for
// min_tokens.
func (s *Sampler) suppressStops(w []float32) {
	ninf := float32(math.Inf(-1))
	if s.eos >= 0 && s.eos < len(w) {
		w[s.eos] = ninf
	}
	for _, id := range s.p.StopTokenIDs {
		if id >= 0 && id < len(w) {
			w[id] = ninf
		}
	}
}

// draw samples from softmax(w/T) truncated by top-k, top-p and min-p; maxv is the
// largest of w. z is the sum of exp((w-maxv)/T) over the whole vocabulary.
func (s *Sampler) draw(w []float32, maxv float32) (id int, z float64) {
	if math.IsInf(float64(maxv), -1) {
		return 0, 0 // everything suppressed: nothing sensible to draw
	}
	n := len(w)
	if cap(s.prob) < n {
		s.prob = make([]float64, n)
		s.cand = make([]cand, 0, n)
	}
	prob := s.prob[:n]
	topK := s.p.TopK > 0 && s.p.TopK < n
	topP := s.p.TopP > 0 && s.p.TopP < 1
	z = s.exps(w, maxv, prob, topK || topP)
	if !topK && !topP && s.p.MinP <= 0 {
		s.kept = nil
		return s.drawDense(prob, z), z
	}
	// Only ids in the buckets the truncations can reach become candidates, so the
	// selects below sort through dozens of ids, not the vocabulary.
	floor := min(s.p.MinP, 1) // the largest probability is exp(0) = 1
	if topK || topP {
		floor = lowEdge(s.cutoff(z))
	}
	c := s.cand[:0]
	for i, e := range prob {
		if e > 0 && e >= floor {
			c = append(c, cand{p: e, id: int32(i)})
		}
	}
	if topK {
		s.selectK(c, s.p.TopK)
		c = c[:s.p.TopK]
	}
	if topP {
		target := s.p.TopP * z
		if topK {
			target = s.p.TopP * sum(c) // top-p is over the renormalised top-k
		}
		c = c[:s.selectMass(c, target)]
	}
	if mp := s.p.MinP; mp > 0 {
		c = minP(c, mp)
	}
	s.kept = c
	if len(c) == 0 {
		return argmax(w), z // only from NaN logits: no distribution to draw from
	}
	r := s.rng.Float64() * sum(c)
	for _, x := range c {
		if r -= x.p; r < 0 {
			return int(x.id), z
		}
	}
	return int(c[len(c)-1].id), z // r landed on the rounding error at the top
}

// exps fills prob with exp((w-maxv)/T) and returns their sum; with hist it also
// fills the buckets' mass and count.
func (s *Sampler) exps(w []float32, maxv float32, prob []float64, hist bool) float64 {
	inv := 1 / s.p.Temperature
	var z float64
	if !hist {
		for i, v := range w {
			prob[i] = expNeg(float64(v-maxv) * inv)
			z += prob[i]
		}
		return z
	}
	clear(s.mass[:])
	clear(s.count[:])
	for i, v := range w {
		e := expNeg(float64(v-maxv) * inv)
		prob[i] = e
		z += e
		b := bucket(e)
		s.mass[b] += e
		s.count[b]++
	}
	return z
}

// drawDense draws from the whole of prob, whose sum is z.
func (s *Sampler) drawDense(prob []float64, z float64) int {
	r := s.rng.Float64() * z
	last := 0
	for i, e := range prob {
		if e > 0 {
			if r -= e; r < 0 {
				return i
			}
			last = i
		}
	}
	return last // r landed on the rounding error at the top
}

// minP keeps the ids whose probability is at least mp times the largest one.
func minP(c []cand, mp float64) []cand {
	var pmax float64
	for _, x := range c {
		pmax = max(pmax, x.p)
	}
	keep := c[:0]
	for _, x := range c {
		if x.p >= min(mp, 1)*pmax { // min_p past 1 (the edge should refuse it) keeps the best
			keep = append(keep, x)
		}
	}
	return keep
}

func sum(c []cand) float64 {
	var t float64
	for _, x := range c {
		t += x.p
	}
	return t
}

// argmax is the index of the largest value, the lowest index on a tie.
func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// logSumExp is log(sum(exp(v))), computed stably given maxv, the largest of v. Four sums break the chain of
// dependent additions, which otherwise bounds the loop.
func logSumExp(v []float32, maxv float32) float32 {
	if math.IsInf(float64(maxv), 0) {
		return maxv
	}
	m := float64(maxv)
	var t0, t1, t2, t3 float64
	i := 0
	for ; i+4 <= len(v); i += 4 {
		t0 += expNeg(float64(v[i]) - m)
		t1 += expNeg(float64(v[i+1]) - m)
		t2 += expNeg(float64(v[i+2]) - m)
		t3 += expNeg(float64(v[i+3]) - m)
	}
	for ; i < len(v); i++ {
		t0 += expNeg(float64(v[i]) - m)
	}
	return maxv + float32(math.Log(t0+t1+t2+t3))
}

// topAlts is the n ids with the largest logits, best first (ties: lower id), with
// their log-softmax.
func topAlts(logits []float32, n int, lse float32) []Alt {
	n = min(n, len(logits))
	top := make([]Alt, 0, n)
	for i, v := range logits {
		if len(top) == n && v <= top[n-1].Logprob {
			continue
		}
		if len(top) < n {
			top = append(top, Alt{})
		}
		j := len(top) - 1
		for ; j > 0 && top[j-1].Logprob < v; j-- {
			top[j] = top[j-1]
		}
		top[j] = Alt{ID: i, Logprob: v}
	}
	for j := range top {
		top[j].Logprob -= lse
	}
	return top
}
