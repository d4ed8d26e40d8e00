package onnxgen

import (
	"math"
	"math/rand/v2"
	"strconv"
)

// Simple returns Triton's classic "simple" model: INT32 inputs INPUT0 and
// INPUT1 of shape [batch, 16] and INT32 outputs OUTPUT0 = INPUT0 + INPUT1 and
// OUTPUT1 = INPUT0 - INPUT1 of the same shape.
func Simple() []byte {
	batch16 := []Dim{Sym("batch"), Fixed(16)}
	return NewModel("simple").
		Input("INPUT0", Int32, batch16...).
		Input("INPUT1", Int32, batch16...).
		Node("Add", []string{"INPUT0", "INPUT1"}, []string{"OUTPUT0"}).
		Node("Sub", []string{"INPUT0", "INPUT1"}, []string{"OUTPUT1"}).
		Output("OUTPUT0", Int32, batch16...).
		Output("OUTPUT1", Int32, batch16...).
		Bytes()
}

// Identity returns a model called name whose output OUTPUT0 is its input
// INPUT0, both of element type elem and fully dynamic shape ["batch", "n"].
// ONNX Runtime's Identity kernel accepts every type in [V2Types].
func Identity(elem DataType, name string) []byte {
	dims := []Dim{Sym("batch"), Sym("n")}
	return NewModel(name).
		Input("INPUT0", elem, dims...).
		Node("Identity", []string{"INPUT0"}, []string{"OUTPUT0"}).
		Output("OUTPUT0", elem, dims...).
		Bytes()
}

// MLP layer sizes: input width, two hidden layers, and output classes.
const (
	MLPInputs  = 256
	MLPHidden  = 1024
	MLPClasses = 10
)

// MLP returns a three-layer perceptron: FP32 input "input" [batch, 256] ->
// MatMul(256x1024) + bias -> Relu -> MatMul(1024x1024) + bias -> Relu ->
// MatMul(1024x10) + bias -> Softmax(axis=-1) -> FP32 output "output"
// [batch, 10]. Each output row is a probability distribution.
//
// The weights come from a PCG generator seeded with seed, so the same seed
// gives byte-identical models. They are drawn uniformly from the Xavier
// (Glorot) range ±sqrt(6/(fan_in+fan_out)), which keeps activations of unit
// scale through the layers, so softmax outputs stay well spread instead of
// saturating to one-hot. Biases are small (±0.1).
func MLP(seed uint64) []byte {
	m, logits := mlpLayers(seed)
	return m.Node("Softmax", []string{logits}, []string{"output"}, AttrInt("axis", -1)).
		Output("output", Float, Sym("batch"), Fixed(MLPClasses)).
		Bytes()
}

// MLPFailing is MLP(seed) that loads and serves but fails every batch holding a row
// whose first input is from or more (every batch when from <= 0): ONNX Runtime refuses
// a Gather index out of range. Its answers are otherwise MLP's. It is the bad candidate
// of the rollout examples.
func MLPFailing(seed uint64, from float32) []byte {
	m, logits := mlpLayers(seed)
	scale, offset := float32(0), float32(1) // every row's index is 1: out of range
	if from > 0 {
		scale, offset = 1/from, 0 // a row's index is 1 once its first input reaches from
	}
	first := make([]float32, MLPInputs)
	first[0] = scale
	return m.Node("Softmax", []string{logits}, []string{"probs"}, AttrInt("axis", -1)).
		InitializerFloat32("fail_pick", []int64{MLPInputs, 1}, first).
		InitializerFloat32("fail_offset", []int64{1}, []float32{offset}).
		InitializerFloat32("fail_table", []int64{1}, []float32{0}).
		Node("MatMul", []string{"input", "fail_pick"}, []string{"fail_scaled"}).
		Node("Add", []string{"fail_scaled", "fail_offset"}, []string{"fail_at"}).
		Node("Cast", []string{"fail_at"}, []string{"fail_index"}, AttrInt("to", int64(Int64))).
		Node("Gather", []string{"fail_table", "fail_index"}, []string{"fail_zero"}, AttrInt("axis", 0)).
		Node("Add", []string{"probs", "fail_zero"}, []string{"output"}).
		Output("output", Float, Sym("batch"), Fixed(MLPClasses)).
		Bytes()
}

// mlpLayers is MLP's model up to its logits.
func mlpLayers(seed uint64) (*Model, string) {
	// The second PCG word is a fixed odd constant so that one seed is enough.
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	m := NewModel("mlp").Input("input", Float, Sym("batch"), Fixed(MLPInputs))

	sizes := []int{MLPInputs, MLPHidden, MLPHidden, MLPClasses}
	x := "input"
	for l := 0; l < len(sizes)-1; l++ {
		in, out := sizes[l], sizes[l+1]
		limit := math.Sqrt(6 / float64(in+out))
		w := make([]float32, in*out)
		for i := range w {
			w[i] = float32((2*rng.Float64() - 1) * limit)
		}
		b := make([]float32, out)
		for i := range b {
			b[i] = float32((2*rng.Float64() - 1) * 0.1)
		}
		wName, bName := layerName("w", l), layerName("b", l)
		mm, sum := layerName("matmul", l), layerName("dense", l)
		m.InitializerFloat32(wName, []int64{int64(in), int64(out)}, w).
			InitializerFloat32(bName, []int64{int64(out)}, b).
			Node("MatMul", []string{x, wName}, []string{mm}).
			Node("Add", []string{mm, bName}, []string{sum})
		x = sum
		if l < len(sizes)-2 {
			relu := layerName("relu", l)
			m.Node("Relu", []string{x}, []string{relu})
			x = relu
		}
	}
	return m, x
}

func layerName(prefix string, l int) string { return prefix + strconv.Itoa(l+1) }

// Accumulator returns a model for stateful (sequence batching) tests: INT32
// inputs INPUT and INPUT_STATE of shape [batch, 1] give INT32 outputs
// OUTPUT = INPUT + INPUT_STATE and OUTPUT_STATE, the same sum, to be fed back
// as the next request's INPUT_STATE.
func Accumulator() []byte {
	dims := []Dim{Sym("batch"), Fixed(1)}
	return NewModel("accumulator").
		Input("INPUT", Int32, dims...).
		Input("INPUT_STATE", Int32, dims...).
		Node("Add", []string{"INPUT", "INPUT_STATE"}, []string{"OUTPUT"}).
		// A value can be produced by only one node, so the state output is
		// an Identity of the sum.
		Node("Identity", []string{"OUTPUT"}, []string{"OUTPUT_STATE"}).
		Output("OUTPUT", Int32, dims...).
		Output("OUTPUT_STATE", Int32, dims...).
		Bytes()
}
