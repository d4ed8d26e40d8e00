package admission

import (
	"math"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/modelconfig"
)

// The config.pbtxt parameters that tune a model's load shedding, over the server's
// defaults (ferry serve --shed-*):
//
//	parameters { key: "shed" value { string_value: "false" } }                   # off for this model
//	parameters { key: "shed_latency_objective" value { string_value: "200ms" } } # or "off"
//	parameters { key: "shed_min_limit" value { string_value: "4" } }
//	parameters { key: "shed_max_limit" value { string_value: "256" } }
//	parameters { key: "shed_initial_limit" value { string_value: "32" } }
const (
	ParamShed         = "shed"
	ParamObjective    = "shed_latency_objective"
	ParamMinLimit     = "shed_min_limit"
	ParamMaxLimit     = "shed_max_limit"
	ParamInitialLimit = "shed_initial_limit"
)

// ShedFor is def adjusted by cfg's shed parameters; the error names the parameter.
func ShedFor(cfg *inference.ModelConfig, def Shed) (Shed, error) {
	s := def
	on, err := modelconfig.ParamBool(cfg, ParamShed, !def.Off)
	if err != nil {
		return def, err
	}
	s.Off = !on
	if s.Objective, err = modelconfig.ParamDuration(cfg, ParamObjective, def.Objective, true); err != nil {
		return def, err
	}
	if s.Objective == 0 {
		s.Off, s.Objective = true, def.Objective
	}
	if s.MinLimit, err = modelconfig.ParamInt(cfg, ParamMinLimit, def.MinLimit, 1, math.MaxInt32); err != nil {
		return def, err
	}
	if s.MaxLimit, err = modelconfig.ParamInt(cfg, ParamMaxLimit, max(def.MaxLimit, s.MinLimit), s.MinLimit, math.MaxInt32); err != nil {
		return def, err
	}
	initial := min(max(def.InitialLimit, s.MinLimit), s.MaxLimit)
	if s.InitialLimit, err = modelconfig.ParamInt(cfg, ParamInitialLimit, initial, s.MinLimit, s.MaxLimit); err != nil {
		return def, err
	}
	return s, s.Validate()
}

// priorityLevels are cfg's dynamic batcher's priority levels and default level, as the
// scheduler reads them (1 level when none).
func priorityLevels(cfg *inference.ModelConfig) (levels, deflt int) {
	db := cfg.GetDynamicBatching()
	levels = int(min(db.GetPriorityLevels(), 1<<16))
	deflt = int(min(db.GetDefaultPriorityLevel(), 1<<16))
	return max(levels, 1), deflt
}
