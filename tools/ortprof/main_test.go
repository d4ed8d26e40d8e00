package main

import (
	"strings"
	"testing"
)

// TestSummarize reads a profile of two runs and wants each operator's total, most
// first, and the runs' mean; with byNode, the nodes apart.
func TestSummarize(t *testing.T) {
	const profile = `[
{"cat":"Session","name":"model_loading_uri","dur":900},
{"cat":"Session","name":"model_run","dur":1000},
{"cat":"Node","name":"mm1_kernel_time","dur":600,"args":{"op_name":"MatMul"}},
{"cat":"Node","name":"mm1_fence_before","dur":5,"args":{"op_name":"MatMul"}},
{"cat":"Node","name":"add_kernel_time","dur":100,"args":{"op_name":"Add"}},
{"cat":"Session","name":"model_run","dur":3000},
{"cat":"Node","name":"mm1_kernel_time","dur":1400,"args":{"op_name":"MatMul"}},
{"cat":"Node","name":"mm2_kernel_time","dur":1000,"args":{"op_name":"MatMul"}},
{"cat":"Node","name":"add_kernel_time","dur":300,"args":{"op_name":"Add"}}]`
	s, err := summarize(strings.NewReader(profile), false)
	if err != nil {
		t.Fatal(err)
	}
	if s.runs != 2 || s.runTime != 4000 || s.kernel != 3400 {
		t.Fatalf("runs %d, run time %d, kernel %d; want 2, 4000, 3400", s.runs, s.runTime, s.kernel)
	}
	want := []row{{"MatMul", 3000, 3}, {"Add", 400, 2}}
	if len(s.rows) != 2 || s.rows[0] != want[0] || s.rows[1] != want[1] {
		t.Fatalf("rows %+v, want %+v", s.rows, want)
	}
	var out strings.Builder
	s.print(&out, 1)
	for _, w := range []string{"2 runs, 2.00 ms a run, of which kernels 1.70 ms", "MatMul", "1.50 ms a run", "88.2%", "... 1 more"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
	s, err = summarize(strings.NewReader(profile), true)
	if err != nil || len(s.rows) != 3 || s.rows[0].key != "mm1 (MatMul)" || s.rows[0].dur != 2000 {
		t.Fatalf("by node: %+v, %v", s.rows, err)
	}
	if _, err := summarize(strings.NewReader(`{"not":"a list"}`), false); err == nil {
		t.Fatal("a JSON object read as a profile")
	}
}
