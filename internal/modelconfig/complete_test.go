package modelconfig

import (
	"strings"
	"testing"
)

func TestCheckComplete(t *testing.T) {
	for _, tc := range []struct {
		name, config string
		want         []string // parts of the error, one per problem; none: complete
	}{
		{"a full config is complete", `platform: "onnxruntime_onnx"
input [ { name: "x" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 4 ] } ]`, nil},
		{"backend alone names the engine", `backend: "onnxruntime"
input [ { name: "x" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ -1 ] } ]`, nil},
		{"an empty config lacks everything", ``, []string{"platform: not set", "input: none listed", "output: none listed"}},
		{"tensors without type or dims", `platform: "onnxruntime_onnx"
input [ { name: "x" } ]
output [ { name: "y" data_type: TYPE_FP32 } ]`, []string{`input["x"].data_type: not set`, `input["x"].dims: not set`, `output["y"].dims: not set`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.config))
			if err != nil {
				t.Fatal(err)
			}
			err = CheckComplete(cfg)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("CheckComplete = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckComplete = nil, want %q", tc.want)
			}
			if got := strings.Count(err.Error(), "\n") + 1; got != len(tc.want) {
				t.Errorf("CheckComplete gave %d problems, want %d:\n%v", got, len(tc.want), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("CheckComplete = %q, lacks %q", err, w)
				}
			}
		})
	}
}
