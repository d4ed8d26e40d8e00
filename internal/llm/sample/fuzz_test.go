package sample

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/ferryml/ferry/internal/llm"
)

// FuzzNext checks that no logits (NaN, ±Inf, huge) and no parameters make Next
// panic or return an id outside the vocabulary.
func FuzzNext(f *testing.F) {
	f.Add([]byte{0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64}, 1.0, 0.9, 2, 0.1, 1.2, int64(1))
	f.Add([]byte{0, 0, 192, 127, 0, 0, 128, 255}, 0.0, 1.0, 0, 0.0, 1.0, int64(2))
	f.Fuzz(func(t *testing.T, raw []byte, temp, topP float64, topK int, minP, rep float64, seed int64) {
		logits := make([]float32, len(raw)/4)
		for i := range logits {
			logits[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		p := llm.Sampling{Temperature: temp, TopP: topP, TopK: topK, MinP: minP, RepetitionPenalty: rep,
			PresencePenalty: 0.5, FrequencyPenalty: 0.5, MinTokens: 1, StopTokenIDs: []int{0, -3, 1 << 20},
			LogitBias: map[int]float64{1: 2, -1: 1, 1 << 20: 1}, WantLogprobs: true, Logprobs: 3, Seed: &seed}
		s := New(p, []int{0, 1, -5, 1 << 20}, 1)
		for range 3 {
			tok := s.Next(logits)
			if len(logits) == 0 {
				if tok.ID != -1 {
					t.Fatalf("Next(empty) = %d, want -1", tok.ID)
				}
				return
			}
			if tok.ID < 0 || tok.ID >= len(logits) {
				t.Fatalf("Next(%v) = %d, outside 0..%d", logits, tok.ID, len(logits)-1)
			}
			s.Accept(tok.ID)
		}
	})
}
