package settings

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLogStartsFromTheLevel(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		want  LogSetting
	}{
		{slog.LevelDebug, LogSetting{Info: true, Warning: true, Error: true, VerboseLevel: 1, Format: "ISO8601"}},
		{slog.LevelInfo, LogSetting{Info: true, Warning: true, Error: true, Format: "ISO8601"}},
		{slog.LevelWarn, LogSetting{Warning: true, Error: true, Format: "ISO8601"}},
		{slog.LevelError, LogSetting{Error: true, Format: "ISO8601"}},
	} {
		lv := new(slog.LevelVar)
		lv.Set(tc.level)
		if diff := cmp.Diff(tc.want, NewLog(lv).Setting()); diff != "" {
			t.Errorf("NewLog at %v (-want +got):\n%s", tc.level, diff)
		}
		if got := SlogLevel(tc.want); got != tc.level {
			t.Errorf("SlogLevel(%+v) = %v, want %v", tc.want, got, tc.level)
		}
	}
}

func TestLogUpdateSetsTheLevel(t *testing.T) {
	lv := new(slog.LevelVar)
	l := NewLog(lv)
	for _, tc := range []struct {
		u    LogUpdate
		want slog.Level
	}{
		{LogUpdate{"log_verbose_level": uint32(1)}, slog.LevelDebug},
		{LogUpdate{"log_verbose_level": Number("0")}, slog.LevelInfo},
		{LogUpdate{"log_info": false}, slog.LevelWarn},
		{LogUpdate{"log_warning": false, "log_format": "ISO8601", "log_file": nil}, slog.LevelError},
		{LogUpdate{"log_error": false}, levelOff},
		{LogUpdate{"log_verbose_level": Number("3")}, slog.LevelDebug},
		{LogUpdate{"log_verbose_level": uint32(0), "log_info": true, "log_warning": true, "log_error": true}, slog.LevelInfo},
	} {
		if err := l.Update(tc.u); err != nil {
			t.Fatalf("Update(%v): %v", tc.u, err)
		}
		if got := lv.Level(); got != tc.want {
			t.Errorf("after Update(%v) the level is %v, want %v", tc.u, got, tc.want)
		}
	}
}

func TestLogUpdateErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		u    LogUpdate
		want string
	}{
		{"unknown name", LogUpdate{"log_colour": true}, `unknown log setting "log_colour"`},
		{"Triton's documented misspelling", LogUpdate{"log_warnings": true}, `unknown log setting "log_warnings"`},
		{"log_file", LogUpdate{"log_file": "/tmp/ferry.log"}, "log_file: log file location can not be updated through network protocol"},
		{"bool as string", LogUpdate{"log_info": "true"}, `log_info: want a boolean, got string "true"`},
		{"negative verbose level", LogUpdate{"log_verbose_level": Number("-1")}, "log_verbose_level: want an integer from 0 to 4294967295, got number -1"},
		{"verbose level fraction", LogUpdate{"log_verbose_level": Number("0.5")}, "got number 0.5"},
		{"verbose level as bool", LogUpdate{"log_verbose_level": true}, "got boolean true"},
		{"default format", LogUpdate{"log_format": "default"}, `log_format: want "ISO8601"`},
		{"two errors, nothing applied", LogUpdate{"log_info": false, "log_error": 1.5, "log_format": "x"}, `log_error: want a boolean, got float64; log_format: want "ISO8601"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lv := new(slog.LevelVar)
			l := NewLog(lv)
			err := l.Update(tc.u)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Update(%v) = %v, want an error containing %q", tc.u, err, tc.want)
			}
			if got := l.Setting(); !got.Info || lv.Level() != slog.LevelInfo {
				t.Errorf("a refused update changed the settings: %+v, level %v", got, lv.Level())
			}
		})
	}
}
