package repository

import (
	"time"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/modelconfig"
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
		Adaptive:         modelconfig.AdaptiveBatching(cfg),
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
