package main

import (
	"log/slog"

	"github.com/ferryml/ferry/internal/settings"
)

// logSettings are the logging extension's settings over the level newLogger's handler
// reads, so POST /v2/logging and the LogSettings RPC change the server's log at once:
// log_verbose_level > 0 is debug, log_info false is warn, and so on
// (settings.SlogLevel has the whole mapping). With no level (a test's own logger), they
// are kept over a level no handler reads.
func logSettings(level *slog.LevelVar) *settings.Log {
	if level == nil {
		level = new(slog.LevelVar)
	}
	return settings.NewLog(level)
}
