package onnxgen

import (
	"math"
	"math/rand/v2"
)

// TabularFeatures names the tabular model's input columns, in order: a credit-scoring
// shaped row of standardized values (0 is the population mean, 1 one standard
// deviation), for the explanation and monitoring examples.
var TabularFeatures = []string{"age", "income", "debt_ratio", "tenure", "late_payments", "utilization"}

// TabularHidden is the tabular model's hidden layer width.
const TabularHidden = 16

// Tabular returns a small tabular classifier: FP32 input "features" [batch, 6] ->
// MatMul(6x16) + bias -> Relu -> MatMul(16x1) + bias -> Sigmoid -> FP32 output
// "score" [batch, 1], a probability. The Relu layer makes features interact, so
// Shapley values differ from a linear model's. Weights come from a PCG generator
// seeded with seed (Xavier range, as MLP), so one seed gives byte-identical models.
func Tabular(seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x7ab1e))
	feats := int64(len(TabularFeatures))
	m := NewModel("tabular").Input("features", Float, Sym("batch"), Fixed(feats))
	layer := func(name string, in, out int64) {
		limit := math.Sqrt(6 / float64(in+out))
		w := make([]float32, in*out)
		for i := range w {
			w[i] = float32((2*rng.Float64() - 1) * limit * 1.5)
		}
		b := make([]float32, out)
		for i := range b {
			b[i] = float32((2*rng.Float64() - 1) * 0.3)
		}
		m.InitializerFloat32(name+"_w", []int64{in, out}, w).InitializerFloat32(name+"_b", []int64{out}, b)
	}
	layer("hidden", feats, TabularHidden)
	layer("logit", TabularHidden, 1)
	return m.
		Node("MatMul", []string{"features", "hidden_w"}, []string{"hidden_mm"}).
		Node("Add", []string{"hidden_mm", "hidden_b"}, []string{"hidden_pre"}).
		Node("Relu", []string{"hidden_pre"}, []string{"hidden"}).
		Node("MatMul", []string{"hidden", "logit_w"}, []string{"logit_mm"}).
		Node("Add", []string{"logit_mm", "logit_b"}, []string{"logit"}).
		Node("Sigmoid", []string{"logit"}, []string{"score"}).
		Output("score", Float, Sym("batch"), Fixed(1)).
		Bytes()
}
