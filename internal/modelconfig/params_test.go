package modelconfig

import (
	"errors"
	"maps"
	"math"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/inference"
)

func paramCfg(kv ...string) *inference.ModelConfig {
	cfg := &inference.ModelConfig{Parameters: map[string]*inference.ModelParameter{}}
	for i := 0; i+1 < len(kv); i += 2 {
		cfg.Parameters[kv[i]] = &inference.ModelParameter{StringValue: kv[i+1]}
	}
	return cfg
}

// checkParam compares a helper's result and error with what a case wants.
func checkParam[T comparable](t *testing.T, call string, got T, err error, want T, wantErr string) {
	t.Helper()
	if wantErr == "" {
		if err != nil || got != want {
			t.Errorf("%s = %v, %v; want %v", call, got, err, want)
		}
		return
	}
	var fe *FieldError
	if !errors.As(err, &fe) || err.Error() != wantErr {
		t.Errorf("%s err = %v, want FieldError %q", call, err, wantErr)
	}
}

func TestParamBool(t *testing.T) {
	for _, tc := range []struct {
		value   string // "-" leaves the parameter unset
		want    bool
		wantErr string
	}{
		{"-", true, ""},
		{"false", false, ""},
		{" 0 ", false, ""},
		{"1", true, ""},
		{"maybe", false, `parameters["p"]: must be true or false (or 1 or 0), got "maybe"`},
	} {
		cfg := paramCfg("p", tc.value)
		if tc.value == "-" {
			cfg = paramCfg()
		}
		got, err := ParamBool(cfg, "p", true)
		checkParam(t, "ParamBool("+tc.value+")", got, err, tc.want, tc.wantErr)
	}
}

func TestParamInt(t *testing.T) {
	for _, tc := range []struct {
		value   string
		hi      int
		want    int
		wantErr string
	}{
		{"-", math.MaxInt, 7, ""},
		{"3", math.MaxInt, 3, ""},
		{"1", 100, 1, ""},
		{"0", math.MaxInt, 0, `parameters["p"]: must be a whole number >= 1, got "0"`},
		{"two", math.MaxInt, 0, `parameters["p"]: must be a whole number >= 1, got "two"`},
		{"101", 100, 0, `parameters["p"]: must be a whole number from 1 to 100, got "101"`},
	} {
		cfg := paramCfg("p", tc.value)
		if tc.value == "-" {
			cfg = paramCfg()
		}
		got, err := ParamInt(cfg, "p", 7, 1, tc.hi)
		checkParam(t, "ParamInt("+tc.value+")", got, err, tc.want, tc.wantErr)
	}
}

func TestParamDuration(t *testing.T) {
	for _, tc := range []struct {
		value   string
		offOK   bool
		want    time.Duration
		wantErr string
	}{
		{"-", false, time.Second, ""},
		{"250ms", false, 250 * time.Millisecond, ""},
		{"off", true, 0, ""},
		{"0", true, 0, ""},
		{"off", false, 0, `parameters["p"]: must be a positive duration such as "2s", got "off"`},
		{"0s", true, 0, `parameters["p"]: must be a positive duration such as "2s" or "off", got "0s"`},
	} {
		cfg := paramCfg("p", tc.value)
		if tc.value == "-" {
			cfg = paramCfg()
		}
		got, err := ParamDuration(cfg, "p", time.Second, tc.offOK)
		checkParam(t, "ParamDuration("+tc.value+")", got, err, tc.want, tc.wantErr)
	}
}

// TestSessionEntries: session.* parameters pass as they are, except ONNX Runtime's
// on/off entries, which read "1" as on and anything else as off: those are written
// as "1" or "0" from what ParamBool takes, and refused otherwise.
func TestSessionEntries(t *testing.T) {
	got, err := SessionEntries(paramCfg("session.intra_op.allow_spinning", "true", "session.inter_op.allow_spinning", " 0 ",
		"session.intra_op.spin_duration_us", "100", "threads", "2"))
	want := map[string]string{"session.intra_op.allow_spinning": "1", "session.inter_op.allow_spinning": "0", "session.intra_op.spin_duration_us": "100"}
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("SessionEntries = %v, %v; want %v", got, err, want)
	}
	if got, err := SessionEntries(paramCfg("threads", "2")); got != nil || err != nil {
		t.Errorf("SessionEntries with no session.* = %v, %v; want nil", got, err)
	}
	_, err = SessionEntries(paramCfg("session.intra_op.allow_spinning", "yes please"))
	checkParam(t, "SessionEntries(yes please)", 0, err, 0, `parameters["session.intra_op.allow_spinning"]: must be true or false (or 1 or 0), got "yes please"`)
}
