package onnxgen_test

import (
	"os"
	"reflect"
	"slices"
	"strconv"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/encoding/protowire"
)

// The fused model is the unfused one with a faster attention: on a
// left-padded batch, in prefill and in decode steps on a past, every output
// (logits, hidden states, the present keys and values) agrees to float error.
func TestGPTFusedMatchesUnfused(t *testing.T) {
	un, fu := openTinyGPT(t, false), openTinyGPT(t, true)
	ids := [][]int64{{40, 1842, 262, 1110, 286, 257}, {0, 0, 15496, 995, 0, 770}}
	mask := [][]int64{ones(6), {0, 0, 1, 1, 1, 1}}
	pos := [][]int64{seq(0, 6), {1, 1, 0, 1, 2, 3}}
	a, b := un.forward(ids, mask, pos, nil), fu.forward(ids, mask, pos, nil)
	worst := compareSteps(t, "prefill", mask, a, b)
	for k := range 4 {
		next := [][]int64{{argmax(a.logits[0])}, {argmax(a.logits[1])}}
		mask[0], mask[1] = append(mask[0], 1), append(mask[1], 1)
		at := [][]int64{{int64(6 + k)}, {int64(4 + k)}}
		a, b = un.forward(next, mask, at, a.present), fu.forward(next, mask, at, b.present)
		worst = max(worst, compareSteps(t, "decode step "+strconv.Itoa(k), mask, a, b))
	}
	t.Logf("left-padded batch of 2, prefill 6 + 4 decode steps: max |Δ| fused vs unfused = %.3g", worst)
}

// compareSteps fails t if any output of got differs from want by 1e-4 or
// more, or has another shape, and returns the largest difference. Positions
// whose attention mask is 0 are left out: both models compute something there
// (a query with nothing to attend to), which the mask hides from every later
// position, so it is not part of the contract.
func compareSteps(t *testing.T, what string, mask [][]int64, want, got step) float64 {
	t.Helper()
	worst := 0.0
	for name, w := range want.out {
		g := got.out[name]
		if g == nil || !g.Shape.Equal(w.Shape) {
			t.Fatalf("%s: fused %s = %v, want shape %v", what, name, g, w.Shape)
		}
		gf, wf := floats(g.Data), floats(w.Data)
		// Every output is [batch, ..., positions, width] with the positions
		// the last of the mask's (logits: the last one only).
		B, P, W := w.Shape[0], w.Shape[len(w.Shape)-2], w.Shape[len(w.Shape)-1]
		T := int64(len(mask[0]))
		for i := range int64(len(wf)) / W {
			row, p := i/(int64(len(wf))/W/B), i%P
			if mask[row][T-P+p] == 0 {
				continue
			}
			d := maxDiff(gf[i*W:(i+1)*W], wf[i*W:(i+1)*W])
			worst = max(worst, d)
			if d >= 1e-4 {
				t.Errorf("%s: %s row %d position %d: max |Δ| fused vs unfused = %g, want < 1e-4", what, name, row, T-P+p, d)
				return worst
			}
		}
	}
	return worst
}

// The fused model keeps the unfused model's contract (the same inputs and
// outputs, names, types and shapes) and imports the com.microsoft operator
// set its MultiHeadAttention nodes need.
func TestGPTFusedContract(t *testing.T) {
	needORT(t)
	var infos [2][2][]ort.InputOutputInfo
	var imports [2][]string
	for i, fused := range []bool{false, true} {
		p, err := tinyGPTs[fused]()
		if err != nil {
			t.Fatal(err)
		}
		if infos[i][0], infos[i][1], err = ort.GetInputOutputInfo(p); err != nil {
			t.Fatal(err)
		}
		model, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		imports[i] = opsetImports(t, model)
	}
	if !reflect.DeepEqual(infos[1], infos[0]) {
		t.Errorf("fused model's inputs and outputs\n%v\nwant the unfused model's\n%v", infos[1], infos[0])
	}
	if got := imports[1]; !slices.Equal(got, []string{"", "com.microsoft"}) {
		t.Errorf("fused model imports operator sets %q, want the default and com.microsoft", got)
	}
	if got := imports[0]; !slices.Equal(got, []string{""}) {
		t.Errorf("unfused model imports operator sets %q, want only the default", got)
	}
}

// opsetImports returns the domains a serialized ModelProto imports
// (opset_import = 8, each an OperatorSetIdProto with domain = 1).
func opsetImports(t *testing.T, model []byte) []string {
	t.Helper()
	var domains []string
	eachField(t, model, func(num protowire.Number, v []byte) {
		if num != 8 {
			return
		}
		opset, _ := protowire.ConsumeBytes(v)
		domain := ""
		eachField(t, opset, func(num protowire.Number, v []byte) {
			if num == 1 {
				domain, _ = protowire.ConsumeString(v)
			}
		})
		domains = append(domains, domain)
	})
	return domains
}

// eachField calls visit with each field of the encoded message msg: its
// number and its encoded value.
func eachField(t *testing.T, msg []byte, visit func(num protowire.Number, v []byte)) {
	t.Helper()
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		msg = msg[n:]
		m := protowire.ConsumeFieldValue(num, typ, msg)
		if m < 0 {
			t.Fatalf("field %d: %v", num, protowire.ParseError(m))
		}
		visit(num, msg[:m])
		msg = msg[m:]
	}
}
