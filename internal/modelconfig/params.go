package modelconfig

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ferryml/ferry/internal/inference"
)

// Model config parameters (parameters { key: ... value { string_value: ... } }) are
// Triton's free-form settings for backends and the batcher; every value is a string.
// These helpers are the one place they are read, so every backend reports a bad value
// the same way: a *FieldError for parameters["key"] naming the value found.

// ParamError is the *FieldError for the parameter key; format says what is wrong.
func ParamError(key, format string, args ...any) error {
	return fieldErr(paramField(key), format, args...)
}

// ParamCause is the *FieldError for the parameter key whose value err refused; it
// wraps err.
func ParamCause(key string, err error) error {
	return &FieldError{Field: paramField(key), Reason: err.Error(), Err: err}
}

func paramField(key string) string { return "parameters[" + strconv.Quote(key) + "]" }

// Param returns the parameter's value with surrounding space trimmed, and whether the
// config sets it.
func Param(cfg *inference.ModelConfig, key string) (string, bool) {
	p, ok := cfg.GetParameters()[key]
	return strings.TrimSpace(p.GetStringValue()), ok
}

// ParamBool reads a switch: true or false, 1 or 0 (Triton's onnxruntime backend uses
// the digits), or another form strconv.ParseBool takes; def when not set.
func ParamBool(cfg *inference.ModelConfig, key string, def bool) (bool, error) {
	v, ok := Param(cfg, key)
	if !ok {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return def, ParamError(key, "must be true or false (or 1 or 0), got %q", v)
	}
	return b, nil
}

// ParamInt reads a whole number from lo to hi (math.MaxInt: no upper bound); def when
// not set.
func ParamInt(cfg *inference.ModelConfig, key string, def, lo, hi int) (int, error) {
	v, ok := Param(cfg, key)
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err == nil && n >= lo && n <= hi {
		return n, nil
	}
	if hi == math.MaxInt {
		return def, ParamError(key, "must be a whole number >= %d, got %q", lo, v)
	}
	return def, ParamError(key, "must be a whole number from %d to %d, got %q", lo, hi, v)
}

// ParamDuration reads a positive duration such as "2s"; def when not set. With offOK,
// "off" or "0" read as 0 (the feature is off).
func ParamDuration(cfg *inference.ModelConfig, key string, def time.Duration, offOK bool) (time.Duration, error) {
	v, ok := Param(cfg, key)
	if !ok {
		return def, nil
	}
	if offOK && (v == "off" || v == "0") {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err == nil && d > 0 {
		return d, nil
	}
	if offOK {
		return def, ParamError(key, `must be a positive duration such as "2s" or "off", got %q`, v)
	}
	return def, ParamError(key, `must be a positive duration such as "2s", got %q`, v)
}

// SessionEntries is a config's parameters named session.*: ONNX Runtime session config
// entries, which the ONNX backend and the LLM engine pass to their sessions as they
// are (nil when there are none). ONNX Runtime reads its on/off entries as "1" or not,
// so "true" would silently mean off: those take what ParamBool takes, written as "1"
// or "0", and anything else is an error naming the parameter.
func SessionEntries(cfg *inference.ModelConfig) (map[string]string, error) {
	var out map[string]string
	for key := range cfg.GetParameters() {
		if !strings.HasPrefix(key, "session.") {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		v, _ := Param(cfg, key)
		if sessionFlags[key] {
			b, err := ParamBool(cfg, key, false)
			if err != nil {
				return nil, err
			}
			v = "0"
			if b {
				v = "1"
			}
		}
		out[key] = v
	}
	return out, nil
}

// sessionFlags are the ONNX Runtime session entries that are "1" or "0".
var sessionFlags = map[string]bool{
	"session.intra_op.allow_spinning": true,
	"session.inter_op.allow_spinning": true,
	"session.disable_prepacking":      true,
}
