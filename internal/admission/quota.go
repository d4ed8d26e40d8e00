package admission

import (
	"context"
	"sync"
	"time"
)

// QuotaStore keeps the quota counters. Add adds n (which may be negative, to give back a
// request refused by a later check) to subject's count for period and returns the new
// total. subject is "tenant:NAME" or "key:ID"; period is "day:2026-12-06" or
// "month:2026-12" (UTC). The registry implements it in SQL, one row per counter:
//
//	CREATE TABLE quota_usage (subject TEXT, period TEXT, used BIGINT NOT NULL,
//	    PRIMARY KEY (subject, period));
//	INSERT INTO quota_usage (subject, period, used) VALUES ($1, $2, $3)
//	ON CONFLICT (subject, period) DO UPDATE SET used = quota_usage.used + EXCLUDED.used
//	RETURNING used;
//
// (PostgreSQL and SQLite >= 3.35 both take it), and may drop rows of past periods.
type QuotaStore interface {
	Add(ctx context.Context, subject, period string, n int64) (total int64, err error)
}

// MemoryQuotas is a QuotaStore in memory: for tests, and for a single server without a
// registry (its counts restart with the process).
type MemoryQuotas struct {
	mu sync.Mutex
	n  map[[2]string]int64
}

var _ QuotaStore = (*MemoryQuotas)(nil)

// Add implements QuotaStore.
func (m *MemoryQuotas) Add(_ context.Context, subject, period string, n int64) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == nil {
		m.n = map[[2]string]int64{}
	}
	k := [2]string{subject, period}
	m.n[k] += n
	return m.n[k], nil
}

// periods are the day and month t falls in, and when each ends (UTC).
func periods(t time.Time) (day, month string, dayEnd, monthEnd time.Time) {
	t = t.UTC()
	y, mo, d := t.Date()
	return "day:" + t.Format("2006-01-02"), "month:" + t.Format("2006-01"),
		time.Date(y, mo, d+1, 0, 0, 0, 0, time.UTC), time.Date(y, mo+1, 1, 0, 0, 0, 0, time.UTC)
}
