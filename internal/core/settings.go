package core

import (
	"context"
	"errors"

	"github.com/ferryml/ferry/internal/settings"
)

// TraceSettings answers the trace extension: it applies update (if not empty) to the
// settings of model ("" for the global ones), then returns the model's effective
// setting. An unknown model is a *NotFoundError; a model the repository knows but has
// not loaded (on-demand, or unloaded) may have settings, for when it serves. A refused
// update is ErrInvalid with settings' message, naming each setting and value.
func (s *Server) TraceSettings(_ context.Context, model string, update settings.TraceUpdate) (settings.TraceSetting, error) {
	if model != "" {
		if err := CheckModelName(model); err != nil {
			return settings.TraceSetting{}, err
		}
		if _, err := s.repo.Ready(model, ""); errors.Is(err, ErrNotFound) {
			return settings.TraceSetting{}, err
		}
	}
	if err := s.trace.Update(model, update); err != nil {
		return settings.TraceSetting{}, &wrapped{msg: err.Error(), kind: ErrInvalid, cause: err}
	}
	return s.trace.Setting(model), nil
}

// LogSettings answers the logging extension: it applies update (if not empty), which
// changes the server's log level at once, then returns the settings.
func (s *Server) LogSettings(_ context.Context, update settings.LogUpdate) (settings.LogSetting, error) {
	if err := s.logs.Update(update); err != nil {
		return settings.LogSetting{}, &wrapped{msg: err.Error(), kind: ErrInvalid, cause: err}
	}
	return s.logs.Setting(), nil
}
