package settings

import (
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func mustUpdate(t *testing.T, tr *Trace, model string, u TraceUpdate) {
	t.Helper()
	if err := tr.Update(model, u); err != nil {
		t.Fatalf("Update(%q, %v): %v", model, u, err)
	}
}

// sampled counts how many of n requests of model are traced.
func sampled(tr *Trace, model string, n int) int {
	k := 0
	for range n {
		if _, ok := tr.Sample(model); ok {
			k++
		}
	}
	return k
}

func TestTraceDefaultsTraceNothing(t *testing.T) {
	tr := NewTrace(DefaultTrace())
	if got := sampled(tr, "m", 5000); got != 0 {
		t.Errorf("with trace_level OFF, %d of 5000 requests were traced", got)
	}
	if diff := cmp.Diff(DefaultTrace(), tr.Setting("")); diff != "" {
		t.Errorf("global setting (-want +got):\n%s", diff)
	}
}

func TestTraceRateAndCount(t *testing.T) {
	tr := NewTrace(DefaultTrace())
	mustUpdate(t, tr, "", TraceUpdate{"trace_level": {"TIMESTAMPS"}, "trace_rate": {"4"}})
	if got := sampled(tr, "m", 40); got != 10 {
		t.Errorf("trace_rate 4: %d of 40 requests traced, want 10", got)
	}
	// Every 4th request is the traced one, at the level set.
	tr = NewTrace(DefaultTrace())
	mustUpdate(t, tr, "", TraceUpdate{"trace_level": {"TIMESTAMPS", "TENSORS"}, "trace_rate": {"4"}})
	for i := 1; i <= 8; i++ {
		l, ok := tr.Sample("m")
		if ok != (i%4 == 0) || (ok && l != TraceTimestamps|TraceTensors) {
			t.Errorf("request %d: Sample = %v, %v", i, l, ok)
		}
	}
	// trace_count stops the tracing after that many traces, and reports what is left.
	mustUpdate(t, tr, "", TraceUpdate{"trace_rate": {"1"}, "trace_count": {"3"}})
	if got := sampled(tr, "m", 2); got != 2 {
		t.Errorf("trace_count 3: %d of the first 2 requests traced, want 2", got)
	}
	if got := tr.Setting("").Count; got != 1 {
		t.Errorf("trace_count after 2 traces = %d, want 1", got)
	}
	if got := sampled(tr, "m", 10); got != 1 {
		t.Errorf("trace_count 3: %d of the next 10 requests traced, want 1", got)
	}
	if got := tr.Setting("").Count; got != 0 {
		t.Errorf("trace_count after 3 traces = %d, want 0", got)
	}
}

func TestTraceCountHoldsUnderConcurrency(t *testing.T) {
	tr := NewTrace(DefaultTrace())
	mustUpdate(t, tr, "", TraceUpdate{"trace_level": {"TIMESTAMPS"}, "trace_rate": {"1"}, "trace_count": {"100"}})
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			n := sampled(tr, "m", 1000)
			mu.Lock()
			total += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if total != 100 {
		t.Errorf("8 goroutines sampling with trace_count 100 took %d traces", total)
	}
}

func TestModelSettingsOverrideAndFollowGlobal(t *testing.T) {
	tr := NewTrace(DefaultTrace())
	mustUpdate(t, tr, "m", TraceUpdate{"trace_level": {"TENSORS"}})
	want := TraceSetting{Level: TraceTensors, Rate: 1000, Count: -1}
	if diff := cmp.Diff(want, tr.Setting("m")); diff != "" {
		t.Errorf("m after setting its level (-want +got):\n%s", diff)
	}
	if got := tr.Setting("other").Level; got != TraceOff {
		t.Errorf("a model without settings has level %v, want the global OFF", got)
	}
	// m's rate follows the global one; its level stays its own.
	mustUpdate(t, tr, "", TraceUpdate{"trace_rate": {"2"}, "trace_level": {"TIMESTAMPS"}})
	want = TraceSetting{Level: TraceTensors, Rate: 2, Count: -1}
	if diff := cmp.Diff(want, tr.Setting("m")); diff != "" {
		t.Errorf("m after a global change (-want +got):\n%s", diff)
	}
	if got := sampled(tr, "m", 10); got != 5 {
		t.Errorf("m at the global rate 2: %d of 10 traced", got)
	}
	// Clearing m's level (nil, REST's null) makes it follow the global level again.
	mustUpdate(t, tr, "m", TraceUpdate{"trace_level": nil})
	if got := tr.Setting("m").Level; got != TraceTimestamps {
		t.Errorf("m's level after clearing = %v, want the global TIMESTAMPS", got.Names())
	}
	// Clearing the global rate returns it to the default.
	mustUpdate(t, tr, "", TraceUpdate{"trace_rate": nil})
	if got := tr.Setting("m").Rate; got != 1000 {
		t.Errorf("m's rate after clearing the global one = %d, want the default 1000", got)
	}
}

func TestModelWithEverySettingKeepsItsCountAcrossGlobalChanges(t *testing.T) {
	tr := NewTrace(DefaultTrace())
	mustUpdate(t, tr, "m", TraceUpdate{"trace_level": {"TIMESTAMPS"}, "trace_rate": {"1"}, "trace_count": {"5"}, "log_frequency": {"0"}})
	sampled(tr, "m", 2)
	mustUpdate(t, tr, "", TraceUpdate{"trace_rate": {"7"}})
	if got := tr.Setting("m"); got.Count != 3 || got.Rate != 1 {
		t.Errorf("m with all its settings after a global change: %+v, want rate 1 and 3 traces left", got)
	}
}

func TestTraceUpdateErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		u    TraceUpdate
		want string
	}{
		{"unknown name", TraceUpdate{"trace_speed": {"1"}}, `unknown trace setting "trace_speed"`},
		{"unknown level", TraceUpdate{"trace_level": {"LOUD"}}, `trace_level: unknown level "LOUD"`},
		{"OFF with another level", TraceUpdate{"trace_level": {"OFF", "TENSORS"}}, "trace_level: OFF must be the only level"},
		{"no level", TraceUpdate{"trace_level": {}}, "trace_level: no level given"},
		{"rate not a number", TraceUpdate{"trace_rate": {"often"}}, `trace_rate: want an integer from 0 to 4294967295, got "often"`},
		{"negative rate", TraceUpdate{"trace_rate": {"-1"}}, `trace_rate: want an integer from 0 to 4294967295, got "-1"`},
		{"two rates", TraceUpdate{"trace_rate": {"1", "2"}}, "trace_rate: want one value, got 2"},
		{"count below -1", TraceUpdate{"trace_count": {"-2"}}, `trace_count: want -1 (no limit) or an integer from 0 to 2147483647, got "-2"`},
		{"count too large", TraceUpdate{"trace_count": {"2147483648"}}, `got "2147483648"`},
		{"log_frequency fraction", TraceUpdate{"log_frequency": {"1.5"}}, `log_frequency: want an integer from 0 to 4294967295, got "1.5"`},
		{"trace_file", TraceUpdate{"trace_file": {"/tmp/x"}}, "trace_file: trace file location can not be updated through network protocol"},
		{"trace_mode", TraceUpdate{"trace_mode": {"triton"}}, "trace_mode: trace mode is set at startup"},
		{"rate 0 while tracing", TraceUpdate{"trace_level": {"TIMESTAMPS"}, "trace_rate": {"0"}}, "trace_rate 0 traces no request"},
		{"two errors at once", TraceUpdate{"trace_rate": {"x"}, "trace_count": {"y"}}, `trace_count: want -1 (no limit) or an integer from 0 to 2147483647, got "y"; trace_rate: want`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTrace(DefaultTrace())
			err := tr.Update("", tc.u)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Update(%v) = %v, want an error containing %q", tc.u, err, tc.want)
			}
			if diff := cmp.Diff(DefaultTrace(), tr.Setting("")); diff != "" {
				t.Errorf("a refused update changed the setting (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGlobalRateZeroRefusedWhileAModelTraces(t *testing.T) {
	tr := NewTrace(DefaultTrace())
	mustUpdate(t, tr, "", TraceUpdate{"trace_rate": {"0"}}) // allowed: tracing is OFF
	if err := tr.Update("m", TraceUpdate{"trace_level": {"TIMESTAMPS"}}); err == nil || !strings.Contains(err.Error(), "model 'm'") {
		t.Fatalf("m tracing at the global rate 0: err = %v, want a refusal naming m", err)
	}
	mustUpdate(t, tr, "", TraceUpdate{"trace_rate": {"10"}})
	mustUpdate(t, tr, "m", TraceUpdate{"trace_level": {"TIMESTAMPS"}})
	err := tr.Update("", TraceUpdate{"trace_rate": {"0"}})
	if err == nil || !strings.Contains(err.Error(), "model 'm' follows the global setting") {
		t.Fatalf("global rate 0 while m traces at it: err = %v", err)
	}
	if got := tr.Setting("").Rate; got != 10 {
		t.Errorf("global rate after the refused update = %d, want 10", got)
	}
}

func TestReportIsTritonsForm(t *testing.T) {
	got := TraceSetting{Level: TraceTimestamps | TraceTensors, Rate: 10, Count: -1, LogFrequency: 3}.Report()
	want := []TraceValue{
		{Name: "trace_level", Values: []string{"TIMESTAMPS", "TENSORS"}, List: true},
		{Name: "trace_rate", Values: []string{"10"}},
		{Name: "trace_count", Values: []string{"-1"}},
		{Name: "log_frequency", Values: []string{"3"}},
		{Name: "trace_file", Values: []string{""}},
		{Name: "trace_mode", Values: []string{"opentelemetry"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Report (-want +got):\n%s", diff)
	}
}
