// Package settings holds the server settings clients read and change at run time
// through Triton's trace and logging extensions (GET/POST /v2/trace/setting,
// /v2/models/{m}/trace/setting and /v2/logging; the TraceSetting and LogSettings RPCs).
//
// It is a leaf: it knows Triton's setting names, value forms and validation, and keeps
// the state in one place, so both transports answer alike and the parts that act on a
// setting read it here. Trace is the seam a tracer reads: Sample answers whether one
// request of a model is traced, and at what level, from trace_level, trace_rate (one
// request in N) and trace_count (traces left). Log drives a slog.LevelVar, so a change
// of log_verbose_level or log_info shows in the server's log at once.
//
// Ferry has no tracer yet (the monitoring work adds OpenTelemetry spans): until it
// does, the trace settings are stored and reported but nothing reads Sample.
package settings
