package v2grpc

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
)

var update = flag.Bool("update", false, "rewrite the seed corpus under testdata/fuzz")

const corpusDir = "testdata/fuzz/FuzzDecodeInferRequest"

// seedRequests are valid requests covering both encodings of every datatype, request
// and output parameters, and several inputs; the committed seed corpus is these,
// marshalled.
func seedRequests() map[string]*inference.ModelInferRequest {
	seeds := map[string]*inference.ModelInferRequest{}
	for i, tc := range datatypeCases {
		name := fmt.Sprintf("%02d_%s", i, tc.dtype)
		seeds["raw_"+name] = &inference.ModelInferRequest{
			ModelName:        "m",
			Inputs:           []*inference.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: tc.dtype, Shape: tc.shape}},
			RawInputContents: [][]byte{tc.raw},
		}
		if tc.typed != nil {
			seeds["typed_"+name] = &inference.ModelInferRequest{
				ModelName: "m",
				Inputs:    []*inference.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: tc.dtype, Shape: tc.shape, Contents: tc.typed}},
			}
		}
	}
	seeds["full"] = &inference.ModelInferRequest{
		ModelName: "mlp", ModelVersion: "2", Id: "42",
		Parameters: map[string]*inference.InferParameter{
			"sequence_id":    {ParameterChoice: &inference.InferParameter_Uint64Param{Uint64Param: 7}},
			"sequence_start": {ParameterChoice: &inference.InferParameter_BoolParam{BoolParam: true}},
			"temperature":    {ParameterChoice: &inference.InferParameter_DoubleParam{DoubleParam: 0.5}},
			"tag":            {ParameterChoice: &inference.InferParameter_StringParam{StringParam: "t"}},
			"priority":       {ParameterChoice: &inference.InferParameter_Int64Param{Int64Param: 1}},
		},
		Inputs: []*inference.ModelInferRequest_InferInputTensor{
			{Name: "a", Datatype: "FP32", Shape: []int64{2, 2}},
			{Name: "b", Datatype: "BYTES", Shape: []int64{2}},
		},
		Outputs: []*inference.ModelInferRequest_InferRequestedOutputTensor{
			{Name: "y", Parameters: map[string]*inference.InferParameter{"classification": {ParameterChoice: &inference.InferParameter_Int64Param{Int64Param: 2}}}},
			{Name: "z"},
		},
		RawInputContents: [][]byte{le(float32(1), float32(2), float32(3), float32(4)), bytesElems("hello", "")},
	}
	return seeds
}

// TestSeedCorpus keeps the committed corpus in step with seedRequests (go test -update
// rewrites it) and checks that every seed is a request the decoder accepts.
func TestSeedCorpus(t *testing.T) {
	if *update {
		if err := os.RemoveAll(corpusDir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(corpusDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	seeds := seedRequests()
	for name, req := range seeds {
		file := filepath.Join(corpusDir, name)
		if *update {
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		// Compare decoded messages, not bytes, so a protobuf upgrade that encodes
		// differently does not make the corpus look stale.
		if got, err := readSeed(file); err != nil || !proto.Equal(got, req) {
			t.Errorf("seed %s is missing or stale (go test -run TestSeedCorpus -update rewrites it): %v", file, err)
		}
		if _, err := decodeInfer(req, core.DefaultLimits(), nil); err != nil {
			t.Errorf("seed %s does not decode: %v", name, err)
		}
	}
	entries, err := os.ReadDir(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(seeds) {
		t.Errorf("%s holds %d files, want the %d seeds", corpusDir, len(entries), len(seeds))
	}
}

// readSeed reads a corpus file in the "go test fuzz v1" format with one []byte value.
func readSeed(file string) (*inference.ModelInferRequest, error) {
	text, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	body, ok := strings.CutPrefix(strings.TrimSpace(string(text)), "go test fuzz v1\n[]byte(")
	if !ok || !strings.HasSuffix(body, ")") {
		return nil, fmt.Errorf("not a go test fuzz v1 file with one []byte")
	}
	b, err := strconv.Unquote(strings.TrimSuffix(body, ")"))
	if err != nil {
		return nil, err
	}
	req := &inference.ModelInferRequest{}
	return req, proto.Unmarshal([]byte(b), req)
}

// FuzzDecodeInferRequest feeds arbitrary bytes through proto.Unmarshal and the decoder.
// The decoder must never panic, must refuse only with INVALID_ARGUMENT, and what it
// accepts must be consistent tensors that the response encoder takes back unchanged.
func FuzzDecodeInferRequest(f *testing.F) {
	small := core.Limits{MaxTensorElements: 1 << 16, MaxRank: 6, MaxGRPCMessageSize: 1 << 20}
	f.Fuzz(func(t *testing.T, b []byte) {
		req := &inference.ModelInferRequest{}
		if proto.Unmarshal(b, req) != nil {
			return
		}
		for _, lim := range []core.Limits{small, core.DefaultLimits()} {
			creq, err := decodeInfer(req, lim, nil)
			if err != nil {
				if codeOf(err) != codes.InvalidArgument {
					t.Fatalf("decode error %q maps to %v, want INVALID_ARGUMENT", err, codeOf(err))
				}
				continue
			}
			if len(creq.Inputs) != len(req.GetInputs()) || len(creq.Outputs) != len(req.GetOutputs()) {
				t.Fatalf("decoded %d inputs / %d outputs from %d / %d", len(creq.Inputs), len(creq.Outputs), len(req.GetInputs()), len(req.GetOutputs()))
			}
			for _, in := range creq.Inputs {
				if err := in.Validate(); err != nil {
					t.Fatalf("accepted input %q is inconsistent: %v", in.Name, err)
				}
				if err := lim.CheckShape(in.Name, in.Shape); err != nil {
					t.Fatalf("accepted input over the limits: %v", err)
				}
			}
			res, err := encodeInfer(req, &core.InferResponse{Model: creq.Model, ID: creq.ID, Outputs: creq.Inputs, Parameters: creq.Parameters}, nil)
			if err != nil {
				t.Fatalf("encoding the decoded tensors back: %v", err)
			}
			if len(res.GetRawOutputContents()) != len(creq.Inputs) {
				t.Fatalf("encoded %d outputs for %d tensors", len(res.GetRawOutputContents()), len(creq.Inputs))
			}
		}
	})
}
