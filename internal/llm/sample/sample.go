package sample

import (
	"math"
	"math/rand/v2"

	"github.com/ferryml/ferry/internal/llm"
)

// Token is one sampled id with its log probability under the model's distribution
// (the logits before any penalty, temperature or truncation, as vLLM reports them),
// and the Sampling.Logprobs best alternatives when asked for.
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

// Sampler picks tokens for one sequence. It is not safe for concurrent use: a
// sequence owns one.
type Sampler struct {
	p      llm.Sampling
	eos    int
	rng    *rand.Rand
	prompt map[int]bool // ids of the prompt (the repetition penalty covers them)
	counts map[int]int  // ids of the output so far and how often each came
	n      int          // tokens accepted
}

// New returns a Sampler for a sequence whose prompt is prompt, under p; eos is the
// vocabulary's end-of-sequence id (-1 for none). Without p.Seed the source is seeded
// at random.
func New(p llm.Sampling, prompt []int, eos int) *Sampler {
	seed := rand.Uint64()
	if p.Seed != nil {
		seed = uint64(*p.Seed)
	}
	s := &Sampler{p: p, eos: eos, rng: rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)), counts: map[int]int{}}
	if p.RepetitionPenalty != 0 && p.RepetitionPenalty != 1 {
		s.prompt = make(map[int]bool, len(prompt))
		for _, id := range prompt {
			s.prompt[id] = true
		}
	}
	return s
}

// Next picks the next token from logits (one per vocabulary id). It may change
// logits in place.
func (s *Sampler) Next(logits []float32) Token {
	// TODO(sample helper): logit bias, min_tokens, penalties, top-k, top-p, min-p, logprobs.
	if s.p.Temperature <= 0 {
		best := 0
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		return Token{ID: best, Logprob: logSoftmaxAt(logits, best)}
	}
	maxv := logits[0]
	for _, v := range logits {
		maxv = max(maxv, v)
	}
	inv := 1 / s.p.Temperature
	var sum float64
	probs := make([]float64, len(logits))
	for i, v := range logits {
		probs[i] = math.Exp(float64(v-maxv) * inv)
		sum += probs[i]
	}
	r := s.rng.Float64() * sum
	id := len(logits) - 1
	for i, p := range probs {
		if r -= p; r < 0 {
			id = i
			break
		}
	}
	return Token{ID: id, Logprob: logSoftmaxAt(logits, id)}
}

// Accept records that id was emitted, for the penalties of later steps.
func (s *Sampler) Accept(id int) {
	s.counts[id]++
	s.n++
}

// logSoftmaxAt is log(softmax(logits)[i]).
func logSoftmaxAt(logits []float32, i int) float32 {
	maxv := logits[0]
	for _, v := range logits {
		maxv = max(maxv, v)
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v - maxv))
	}
	return float32(float64(logits[i]-maxv) - math.Log(sum))
}
