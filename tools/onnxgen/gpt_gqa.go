package onnxgen

import (
	"errors"
	"fmt"
	"math"
)

// The names GroupQueryAttention's length inputs have in a SharedKV graph:
// every layer reads the same two tensors, computed once from attention_mask.
const (
	gqaSeqlensK = "seqlens_k"             // int32 [batch]: each row's length after the step, minus 1
	gqaTotalLen = "total_sequence_length" // int32 scalar: attention_mask's width
	gqaRowLast  = "row_last"              // int64 [batch]: the same as seqlens_k, for the head's Gather
)

// gqaHeadSizeMultiple is GroupQueryAttention's constraint on the head size
// (ONNX Runtime refuses others when the model runs, with a less clear error).
const gqaHeadSizeMultiple = 8

// contrib reports whether the model uses a com.microsoft operator, so must
// import that operator set.
func (c GPTConfig) contrib() bool { return c.FusedAttention || c.SharedKV }

// validateSharedKV reports what keeps SharedKV from making a model.
func (c GPTConfig) validateSharedKV() []error {
	if !c.SharedKV {
		return nil
	}
	var errs []error
	if c.FusedAttention {
		errs = append(errs, errors.New("SharedKV: excludes FusedAttention (both pick the attention operator)"))
	}
	if c.Heads > 0 && c.Dim%c.Heads == 0 && (c.Dim/c.Heads)%gqaHeadSizeMultiple != 0 {
		errs = append(errs, fmt.Errorf("SharedKV: GroupQueryAttention needs Dim/Heads to be a multiple of %d, got %d",
			gqaHeadSizeMultiple, c.Dim/c.Heads))
	}
	return errs
}

// gqaLengths derives GroupQueryAttention's seqlens_k and
// total_sequence_length from attention_mask, as onnxruntime-genai's model
// builder does: a row's length is its mask's sum (its ones lead, the cache
// being right padded), the total the mask's width. It returns seqlens_k's
// name.
func (b *gptBuilder) gqaLengths() string {
	b.m.Node("ReduceSum", []string{"attention_mask", "c_ax1"}, []string{"row_len"}, AttrInt("keepdims", 0))
	b.node("Sub", gqaRowLast, "row_len", "c_i1")
	b.m.Node("Cast", []string{gqaRowLast}, []string{gqaSeqlensK}, AttrInt("to", int64(Int32)))
	b.node("Shape", "am_shape", "attention_mask")
	T := b.node("Gather", "am_width", "am_shape", "c_i1")
	b.m.Node("Cast", []string{T}, []string{gqaTotalLen}, AttrInt("to", int64(Int32)))
	return gqaSeqlensK
}

// gqaAttention attends with GroupQueryAttention on layer i's packed qkv
// [batch, sequence, 3·Dim] (queries, keys, values, each head after head: the
// layout the operator's packed form reads), writing this step's keys and
// values into the shared cache, and returns the context [batch, sequence,
// Dim].
func (b *gptBuilder) gqaAttention(i int, p, qkv string) string {
	H, Dh := int64(b.cfg.Heads), b.cfg.Dim/b.cfg.Heads
	ctx := p + "ctx_m"
	// Inputs: query (packed), key, value, past_key, past_value, seqlens_k,
	// total_sequence_length; "" leaves key and value out, which is what
	// makes query the packed form.
	b.m.contribNode("GroupQueryAttention",
		[]string{qkv, "", "", pastName(i, "key"), pastName(i, "value"), gqaSeqlensK, gqaTotalLen},
		[]string{ctx, presentName(i, "key"), presentName(i, "value")},
		AttrInt("num_heads", H), AttrInt("kv_num_heads", H), AttrInt("do_rotary", 0),
		AttrFloat("scale", float32(1/math.Sqrt(float64(Dh)))))
	return ctx
}

// lastRealTokens picks each row's last real position from x [batch,
// sequence, Dim], giving [batch, 1, Dim]: position min(sequence, len) - 1,
// which is the step's last column in a decode step or a chunk on a past, but
// the row's own last token in a right-padded prompt.
func (b *gptBuilder) lastRealTokens(x string) string {
	D := int64(b.cfg.Dim)
	b.m.InitializerInt64("c_11d", []int64{3}, []int64{1, 1, D})
	b.node("Shape", "ids_shape", "input_ids")
	S := b.node("Gather", "S", "ids_shape", "c_i1")
	last := b.node("Min", "last_pos", gqaRowLast, b.node("Sub", "S_m1", S, "c_i1"))
	idx := b.node("Expand", "last_idx", b.node("Unsqueeze", "last_pos3", last, "c_ax12"), "c_11d")
	b.m.Node("GatherElements", []string{x, idx}, []string{"lnf_last"}, AttrInt("axis", 1))
	return "lnf_last"
}
