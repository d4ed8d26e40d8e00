package repository

import (
	"time"

	inference "github.com/ferryml/ferry/internal/proto"
	"github.com/ferryml/ferry/internal/scheduler"
)

// schedulerOptions translates a complete config's scheduling fields for the scheduler,
// which knows nothing of model configs.
func schedulerOptions(cfg *inference.ModelConfig) scheduler.Options {
	opts := scheduler.Options{MaxBatchSize: int(cfg.GetMaxBatchSize())}
	db := cfg.GetDynamicBatching()
	if db == nil {
		return opts
	}
	b := &scheduler.Batching{
		MaxQueueDelay:    time.Duration(db.GetMaxQueueDelayMicroseconds()) * time.Microsecond,
		PreserveOrdering: db.GetPreserveOrdering(),
		PriorityLevels:   int(db.GetPriorityLevels()),
		DefaultPriority:  int(db.GetDefaultPriorityLevel()),
		DefaultPolicy:    queuePolicy(db.GetDefaultQueuePolicy()),
		LevelPolicies:    map[int]scheduler.QueuePolicy{},
		Adaptive:         adaptiveBatching(cfg),
	}
	for _, p := range db.GetPreferredBatchSize() {
		b.PreferredBatchSizes = append(b.PreferredBatchSizes, int(p))
	}
	for lv, p := range db.GetPriorityQueuePolicy() {
		b.LevelPolicies[int(lv)] = queuePolicy(p)
	}
	opts.Batching = b
	return opts
}

// ParamAdaptiveBatching is the model config parameter that turns the adaptive queue
// delay off: "false" keeps Triton's semantics, where a batch short of full always waits
// out max_queue_delay_microseconds. Adaptive is the default (see scheduler.Batching).
const ParamAdaptiveBatching = "adaptive_batching"

func adaptiveBatching(cfg *inference.ModelConfig) bool {
	p, ok := cfg.GetParameters()[ParamAdaptiveBatching]
	return !ok || p.GetStringValue() != "false"
}

func queuePolicy(p *inference.ModelQueuePolicy) scheduler.QueuePolicy {
	action := scheduler.Reject
	if p.GetTimeoutAction() == inference.ModelQueuePolicy_DELAY {
		action = scheduler.Delay
	}
	return scheduler.QueuePolicy{
		Action:         action,
		DefaultTimeout: time.Duration(p.GetDefaultTimeoutMicroseconds()) * time.Microsecond,
		AllowOverride:  p.GetAllowTimeoutOverride(),
		MaxQueueSize:   int(p.GetMaxQueueSize()),
	}
}
