package settings

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Triton's log setting names.
const (
	LogFileName         = "log_file"
	LogInfoName         = "log_info"
	LogWarningName      = "log_warning"
	LogErrorName        = "log_error"
	LogVerboseLevelName = "log_verbose_level"
	LogFormatName       = "log_format"
)

// LogFormat is what log_format reports. Triton's two formats differ in the time stamp
// of a line: "default" is glog's (I0106 12:34:56.789), "ISO8601" an ISO 8601 time.
// Ferry's slog lines (JSON or text, chosen by --log-format) carry RFC 3339 times,
// which are ISO 8601, so ISO8601 is the honest answer, and the only one accepted.
const LogFormat = "ISO8601"

// LogSetting is the logging extension's view of the server's log.
type LogSetting struct {
	File                 string // always "": the log goes to the process's stderr
	Info, Warning, Error bool
	VerboseLevel         uint32
	Format               string
}

// LogValue is one log setting as the extension reports it: Value is a bool, a uint32 or
// a string.
type LogValue struct {
	Name  string
	Value any
}

// Report lists every setting in Triton's order.
func (s LogSetting) Report() []LogValue {
	return []LogValue{
		{LogFileName, s.File}, {LogInfoName, s.Info}, {LogWarningName, s.Warning},
		{LogErrorName, s.Error}, {LogVerboseLevelName, s.VerboseLevel}, {LogFormatName, s.Format},
	}
}

// Number is a number as a JSON body wrote it; LogUpdate accepts it where a uint32 is
// due, so the REST transport need not know which setting wants a number.
type Number string

// LogUpdate is a log setting request: setting name to its new value, a bool, a uint32,
// a Number or a string. A nil value leaves the setting as it is (REST's null, as in
// Triton); settings left out keep their values too.
type LogUpdate map[string]any

// levelOff is above every level Ferry logs at: every log_* switch is off.
const levelOff = slog.LevelError + 4

// SlogLevel maps the settings onto slog's single threshold, where Triton has a switch per
// severity: the lowest severity switched on decides. log_verbose_level > 0 is Debug
// (Ferry has one verbose level: any level above 0 shows every debug line); else
// log_info is Info, else log_warning is Warn, else log_error is Error; all off logs
// nothing. A severity above the threshold cannot be switched off alone (log_warning
// false with log_info true still shows warnings).
func SlogLevel(s LogSetting) slog.Level {
	switch {
	case s.VerboseLevel > 0:
		return slog.LevelDebug
	case s.Info:
		return slog.LevelInfo
	case s.Warning:
		return slog.LevelWarn
	case s.Error:
		return slog.LevelError
	}
	return levelOff
}

// logSettingOf is SlogLevel's inverse, for the level the server starts with.
func logSettingOf(l slog.Level) LogSetting {
	s := LogSetting{Info: l <= slog.LevelInfo, Warning: l <= slog.LevelWarn, Error: l <= slog.LevelError, Format: LogFormat}
	if l <= slog.LevelDebug {
		s.VerboseLevel = 1
	}
	return s
}

// Log holds the log settings and applies them to the server's log level. Its methods
// are safe for concurrent use.
type Log struct {
	mu    sync.Mutex
	cur   LogSetting
	level *slog.LevelVar
}

// NewLog starts from level's current value (--log-level) and sets level on every update;
// the server's log handlers read it, so a change shows at once.
func NewLog(level *slog.LevelVar) *Log {
	return &Log{cur: logSettingOf(level.Level()), level: level}
}

// Setting is the current setting, as the last update left it.
func (l *Log) Setting() LogSetting {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur
}

// Update checks every setting of u, then applies them all, or none; an error names each
// setting and value refused.
func (l *Log) Update(u LogUpdate) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	next := l.cur
	var errs []string
	for _, name := range slices.Sorted(maps.Keys(u)) {
		if err := next.set(name, u[name]); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	l.cur = next
	l.level.Set(SlogLevel(next))
	return nil
}

func (s *LogSetting) set(name string, v any) error {
	if v == nil && name != LogFileName {
		return knownLog(name)
	}
	switch name {
	case LogFileName:
		if v == nil {
			return nil
		}
		return fmt.Errorf("%s: log file location can not be updated through network protocol (Ferry logs to stderr)", name)
	case LogInfoName, LogWarningName, LogErrorName:
		b, ok := v.(bool)
		if !ok {
			return fmt.Errorf("%s: want a boolean, got %s", name, describe(v))
		}
		switch name {
		case LogInfoName:
			s.Info = b
		case LogWarningName:
			s.Warning = b
		default:
			s.Error = b
		}
	case LogVerboseLevelName:
		n, err := uint32Of(v)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		s.VerboseLevel = n
	case LogFormatName:
		f, ok := v.(string)
		if !ok || f != LogFormat {
			return fmt.Errorf("%s: want %q (Ferry's log lines carry ISO 8601 times; JSON or text is chosen with --log-format), got %s", name, LogFormat, describe(v))
		}
	default:
		return knownLog(name)
	}
	return nil
}

// knownLog refuses an unknown name; a known one with a nil value changes nothing.
func knownLog(name string) error {
	switch name {
	case LogFileName, LogInfoName, LogWarningName, LogErrorName, LogVerboseLevelName, LogFormatName:
		return nil
	}
	return fmt.Errorf("unknown log setting %q (want %s, %s, %s, %s, %s or %s)", name,
		LogFileName, LogInfoName, LogWarningName, LogErrorName, LogVerboseLevelName, LogFormatName)
}

func uint32Of(v any) (uint32, error) {
	switch n := v.(type) {
	case uint32:
		return n, nil
	case Number:
		u, err := strconv.ParseUint(string(n), 10, 32)
		if err == nil {
			return uint32(u), nil
		}
	}
	return 0, fmt.Errorf("want an integer from 0 to %d, got %s", uint32(1<<32-1), describe(v))
}

// describe names a value and its type for an error message.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("string %q", x)
	case bool:
		return fmt.Sprintf("boolean %v", x)
	case Number:
		return "number " + string(x)
	case uint32:
		return fmt.Sprintf("number %d", x)
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprintf("%T", v)
}
