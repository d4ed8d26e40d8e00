package settings

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// TraceLevel is what a traced request records, as a set of Triton's levels; 0 is OFF.
type TraceLevel uint8

// The trace levels. TraceOff traces nothing.
const (
	TraceTimestamps TraceLevel = 1 << iota // TIMESTAMPS: when each stage of a request began and ended
	TraceTensors                           // TENSORS: the request's input and output tensors

	TraceOff TraceLevel = 0
)

// Names are the level's names as trace_level reports them: ["OFF"], or the levels set.
func (l TraceLevel) Names() []string {
	if l == TraceOff {
		return []string{"OFF"}
	}
	var names []string
	if l&TraceTimestamps != 0 {
		names = append(names, "TIMESTAMPS")
	}
	if l&TraceTensors != 0 {
		names = append(names, "TENSORS")
	}
	return names
}

// Triton's trace setting names.
const (
	TraceLevelName   = "trace_level"
	TraceRateName    = "trace_rate"
	TraceCountName   = "trace_count"
	LogFrequencyName = "log_frequency"
	TraceFileName    = "trace_file"
	TraceModeName    = "trace_mode"
)

// TraceMode is what trace_mode reports: Ferry's tracer will export OpenTelemetry spans;
// it writes no Triton trace files (so trace_file is always empty).
const TraceMode = "opentelemetry"

// TraceSetting is the effective trace setting of the server or of one model.
type TraceSetting struct {
	Level TraceLevel
	// Rate: one request in Rate is traced. 0 traces none and is allowed only with
	// Level OFF, as in Triton.
	Rate uint32
	// Count is how many more traces are taken; -1: no limit. Sampling counts it down.
	Count int32
	// LogFrequency is Triton's "write the trace file every N traces". Ferry stores and
	// reports it; it writes no trace file.
	LogFrequency uint32
}

// DefaultTrace is Triton's default: tracing off, one request in 1000, no count limit.
func DefaultTrace() TraceSetting { return TraceSetting{Rate: 1000, Count: -1} }

// TraceValue is one trace setting as the extension reports it.
type TraceValue struct {
	Name   string
	Values []string
	// List: the REST form is a JSON array (trace_level); the others are one string.
	List bool
}

// Report lists every setting in Triton's string form, in Triton's order.
func (s TraceSetting) Report() []TraceValue {
	return []TraceValue{
		{Name: TraceLevelName, Values: s.Level.Names(), List: true},
		{Name: TraceRateName, Values: []string{strconv.FormatUint(uint64(s.Rate), 10)}},
		{Name: TraceCountName, Values: []string{strconv.FormatInt(int64(s.Count), 10)}},
		{Name: LogFrequencyName, Values: []string{strconv.FormatUint(uint64(s.LogFrequency), 10)}},
		{Name: TraceFileName, Values: []string{""}},
		{Name: TraceModeName, Values: []string{TraceMode}},
	}
}

// valid refuses what Triton refuses: tracing on with a rate of 0.
func (s TraceSetting) valid() error {
	if s.Level != TraceOff && s.Rate == 0 {
		return fmt.Errorf("%s 0 traces no request: set a rate >= 1 or %s OFF", TraceRateName, TraceLevelName)
	}
	return nil
}

// TraceUpdate is a trace setting request: setting name to new values, in Triton's string
// form. A nil value clears the setting: a model's follows the global one again, and the
// global one returns to its startup value. Settings left out keep their values.
type TraceUpdate map[string][]string

// fields are the values a model (over the global setting) or the global setting (over
// the startup defaults) sets itself; nil follows the setting below.
type fields struct {
	level        *TraceLevel
	rate         *uint32
	count        *int32
	logFrequency *uint32
}

func (f fields) over(base TraceSetting) TraceSetting {
	if f.level != nil {
		base.Level = *f.level
	}
	if f.rate != nil {
		base.Rate = *f.rate
	}
	if f.count != nil {
		base.Count = *f.count
	}
	if f.logFrequency != nil {
		base.LogFrequency = *f.logFrequency
	}
	return base
}

func (f fields) none() bool {
	return f.level == nil && f.rate == nil && f.count == nil && f.logFrequency == nil
}

// all: nothing follows the setting below, so a change there leaves this one alone.
func (f fields) all() bool {
	return f.level != nil && f.rate != nil && f.count != nil && f.logFrequency != nil
}

// sampler is one effective setting and its sampling counters. Its setting never
// changes; an update replaces the sampler, which restarts the counting, as Triton
// replaces its TraceSetting object.
type sampler struct {
	set  TraceSetting
	seen atomic.Uint64 // requests sampled so far
	left atomic.Int32  // traces left; -1: no limit
}

func newSampler(s TraceSetting) *sampler {
	sm := &sampler{set: s}
	sm.left.Store(s.Count)
	return sm
}

// sample counts one request and says whether it is traced.
func (sm *sampler) sample() (TraceLevel, bool) {
	if sm.set.Level == TraceOff || sm.set.Rate == 0 || sm.left.Load() == 0 {
		return TraceOff, false
	}
	if sm.seen.Add(1)%uint64(sm.set.Rate) != 0 {
		return TraceOff, false
	}
	for {
		n := sm.left.Load()
		switch {
		case n < 0:
			return sm.set.Level, true
		case n == 0:
			return TraceOff, false
		case sm.left.CompareAndSwap(n, n-1):
			return sm.set.Level, true
		}
	}
}

func (sm *sampler) setting() TraceSetting {
	s := sm.set
	s.Count = sm.left.Load()
	return s
}

// traceSnapshot is what readers see; it is never changed after it is published.
type traceSnapshot struct {
	global *sampler
	models map[string]*sampler // models with settings of their own
}

// Trace holds the global trace setting and the models' own settings, and samples
// requests by them. All methods are safe for concurrent use; Sample takes no lock.
type Trace struct {
	mu       sync.Mutex // serializes updates
	defaults TraceSetting
	global   fields
	models   map[string]fields
	snap     atomic.Pointer[traceSnapshot]
}

// NewTrace starts from defaults (DefaultTrace, or the server's startup flags), which a
// cleared global setting returns to. Invalid defaults (tracing on at rate 0) trace nothing.
func NewTrace(defaults TraceSetting) *Trace {
	t := &Trace{defaults: defaults, models: map[string]fields{}}
	t.snap.Store(&traceSnapshot{global: newSampler(defaults), models: map[string]*sampler{}})
	return t
}

// Sample counts one request of model and says whether it is traced, and at what level:
// the model's setting (or the global one) traces one request in trace_rate while
// trace_count lasts. It is the one question a tracer asks; it never blocks.
func (t *Trace) Sample(model string) (TraceLevel, bool) {
	return t.samplerOf(model).sample()
}

// Setting is the effective setting of model ("" for the global one), with the traces
// left as Count.
func (t *Trace) Setting(model string) TraceSetting { return t.samplerOf(model).setting() }

func (t *Trace) samplerOf(model string) *sampler {
	snap := t.snap.Load()
	if sm, ok := snap.models[model]; ok && model != "" {
		return sm
	}
	return snap.global
}

// Update changes the settings of model ("" for the global ones). The request is checked
// whole before anything changes; an error names each setting and value refused. The
// caller checks that the model exists.
func (t *Trace) Update(model string, u TraceUpdate) error {
	ch, err := parseTraceUpdate(u)
	if err != nil {
		return err
	}
	if len(u) == 0 {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if model == "" {
		return t.updateGlobal(ch)
	}
	return t.updateModel(model, ch)
}

func (t *Trace) updateModel(model string, ch change) error {
	f := ch.apply(t.models[model])
	old := t.snap.Load()
	next := &traceSnapshot{global: old.global, models: maps.Clone(old.models)}
	if f.none() {
		delete(next.models, model)
	} else {
		s := f.over(t.globalSetting())
		if err := s.valid(); err != nil {
			return fmt.Errorf("model '%s': %w", model, err)
		}
		next.models[model] = newSampler(s)
	}
	if f.none() {
		delete(t.models, model)
	} else {
		t.models[model] = f
	}
	t.snap.Store(next)
	return nil
}

// updateGlobal changes the global fields; models that follow any global field get new
// samplers, as Triton re-creates the settings of models that fall back on it.
func (t *Trace) updateGlobal(ch change) error {
	g := ch.apply(t.global)
	gs := g.over(t.defaults)
	if err := gs.valid(); err != nil {
		return err
	}
	old := t.snap.Load()
	next := &traceSnapshot{global: newSampler(gs), models: make(map[string]*sampler, len(old.models))}
	for _, name := range slices.Sorted(maps.Keys(t.models)) {
		f := t.models[name]
		if f.all() {
			next.models[name] = old.models[name]
			continue
		}
		s := f.over(gs)
		if err := s.valid(); err != nil {
			return fmt.Errorf("model '%s' follows the global setting: %w", name, err)
		}
		next.models[name] = newSampler(s)
	}
	t.global = g
	t.snap.Store(next)
	return nil
}

func (t *Trace) globalSetting() TraceSetting { return t.global.over(t.defaults) }

// change is a parsed TraceUpdate: new values, and the settings to clear.
type change struct {
	set   fields
	clear map[string]bool
}

func (c change) apply(f fields) fields {
	if c.set.level != nil || c.clear[TraceLevelName] {
		f.level = c.set.level
	}
	if c.set.rate != nil || c.clear[TraceRateName] {
		f.rate = c.set.rate
	}
	if c.set.count != nil || c.clear[TraceCountName] {
		f.count = c.set.count
	}
	if c.set.logFrequency != nil || c.clear[LogFrequencyName] {
		f.logFrequency = c.set.logFrequency
	}
	return f
}

// parseTraceUpdate checks every setting of u and reports every problem at once.
func parseTraceUpdate(u TraceUpdate) (change, error) {
	ch := change{clear: map[string]bool{}}
	var errs []string
	for _, name := range slices.Sorted(maps.Keys(u)) {
		vals := u[name]
		if err := ch.parse(name, vals); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return change{}, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return ch, nil
}

func (ch *change) parse(name string, vals []string) error {
	switch name {
	case TraceFileName:
		return fmt.Errorf("%s: trace file location can not be updated through network protocol (Ferry writes no trace file; trace_mode is %s)", name, TraceMode)
	case TraceModeName:
		return fmt.Errorf("%s: trace mode is set at startup and can not be updated through network protocol", name)
	case TraceLevelName, TraceRateName, TraceCountName, LogFrequencyName:
	default:
		return fmt.Errorf("unknown trace setting %q (want %s, %s, %s or %s)", name, TraceLevelName, TraceRateName, TraceCountName, LogFrequencyName)
	}
	if vals == nil {
		ch.clear[name] = true
		return nil
	}
	if name == TraceLevelName {
		l, err := parseLevel(vals)
		if err != nil {
			return err
		}
		ch.set.level = &l
		return nil
	}
	if len(vals) != 1 {
		return fmt.Errorf("%s: want one value, got %d", name, len(vals))
	}
	v := vals[0]
	switch name {
	case TraceRateName, LogFrequencyName:
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return fmt.Errorf("%s: want an integer from 0 to %d, got %q", name, uint32(1<<32-1), v)
		}
		u := uint32(n)
		if name == TraceRateName {
			ch.set.rate = &u
		} else {
			ch.set.logFrequency = &u
		}
	case TraceCountName:
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < -1 {
			return fmt.Errorf("%s: want -1 (no limit) or an integer from 0 to %d, got %q", name, int32(1<<31-1), v)
		}
		c := int32(n)
		ch.set.count = &c
	}
	return nil
}

// parseLevel reads trace_level's values: OFF alone, or TIMESTAMPS and/or TENSORS.
func parseLevel(vals []string) (TraceLevel, error) {
	if len(vals) == 0 {
		return TraceOff, fmt.Errorf("%s: no level given (want OFF, TIMESTAMPS or TENSORS; null clears the setting)", TraceLevelName)
	}
	var l TraceLevel
	for _, v := range vals {
		switch v {
		case "OFF":
			if len(vals) != 1 {
				return TraceOff, fmt.Errorf("%s: OFF must be the only level, got %q", TraceLevelName, vals)
			}
		case "TIMESTAMPS":
			l |= TraceTimestamps
		case "TENSORS":
			l |= TraceTensors
		default:
			return TraceOff, fmt.Errorf("%s: unknown level %q (want OFF, TIMESTAMPS or TENSORS)", TraceLevelName, v)
		}
	}
	return l, nil
}
