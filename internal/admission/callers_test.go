package admission

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
)

// counter is an Observer that counts refusals by tenant and kind.
type counter map[string]int

func (c counter) Refused(tenant string, k Kind) { c[tenant+"/"+k.String()]++ }

func newController(t *testing.T, lim *Config) (*Controller, counter) {
	t.Helper()
	obs := counter{}
	shed := DefaultShed()
	shed.Off = true // these tests are about the callers' limits
	c, err := New(Options{Limits: lim, Shed: shed, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	return c, obs
}

var cfgM = &inference.ModelConfig{Name: "m"}

func ticket(tenant, key string, items int) core.Ticket {
	return core.Ticket{Tenant: tenant, Key: key, Model: "m", Version: "1", Config: cfgM, Items: items}
}

// admit asks c and, when admitted, finishes the request at once.
func admit(c *Controller, tk core.Ticket) *Refusal {
	done, err := c.Admit(context.Background(), tk)
	if err != nil {
		var r *Refusal
		if !errors.As(err, &r) {
			panic(err)
		}
		return r
	}
	done(time.Millisecond, nil)
	return nil
}

func TestRequestBucketRefusesPastItsBurstAndRefills(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, obs := newController(t, &Config{Default: Limits{RequestsPerSecond: 10}})
		for i := range 10 {
			if r := admit(c, ticket("a", "", 1)); r != nil {
				t.Fatalf("request %d of the burst of 10: refused: %v", i, r)
			}
		}
		r := admit(c, ticket("a", "", 1))
		if r == nil || r.Kind != RateLimited || r.RetryAfter != 100*time.Millisecond {
			t.Fatalf("11th request: refusal %+v, want RateLimited with RetryAfter 100ms", r)
		}
		if !errors.Is(r, core.ErrRateLimited) || core.RetryAfter(r) != 100*time.Millisecond {
			t.Errorf("refusal %v: not core.ErrRateLimited with its retry-after", r)
		}
		mustAdmit(t, c, "b", "another tenant (buckets are per tenant)")
		time.Sleep(100 * time.Millisecond)
		mustAdmit(t, c, "a", "after the retry-after")
		if obs["a/rate_limited"] != 1 {
			t.Errorf("refusals counted %v, want a/rate_limited 1", obs)
		}
	})
}

func TestItemBucketCountsRows(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, _ := newController(t, &Config{Default: Limits{ItemsPerSecond: 100}})
		if r := admit(c, ticket("a", "", 150)); r == nil || r.Kind != RateLimited {
			t.Fatalf("150 items against a burst of 100: %v, want a refusal", r)
		}
		if r := admit(c, ticket("a", "", 80)); r != nil {
			t.Fatalf("80 items: refused: %v", r)
		}
		r := admit(c, ticket("a", "", 40))
		if r == nil || r.RetryAfter != 200*time.Millisecond {
			t.Fatalf("40 more items with 20 left: %+v, want a wait of 200ms", r)
		}
		time.Sleep(200 * time.Millisecond)
		if r := admit(c, ticket("a", "", 40)); r != nil {
			t.Errorf("after 200ms: refused: %v", r)
		}
	})
}

func TestConcurrencyLimitAndKeyLimitsOnTopOfTheTenant(t *testing.T) {
	c, obs := newController(t, &Config{Default: Limits{Concurrency: 3}, Keys: map[string]Limits{"k1": {Concurrency: 1}}})
	ctx := context.Background()
	d1, err := c.Admit(ctx, ticket("a", "k1", 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Admit(ctx, ticket("a", "k1", 1)); !errors.Is(err, core.ErrRateLimited) {
		t.Fatalf("second request of key k1 (concurrency 1): err %v, want rate limited", err)
	}
	d2, err := c.Admit(ctx, ticket("a", "k2", 1))
	if err != nil {
		t.Fatalf("key k2 has no limits of its own: %v", err)
	}
	d3, err := c.Admit(ctx, ticket("a", "", 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Admit(ctx, ticket("a", "", 1)); err == nil {
		t.Fatal("a 4th request of tenant a (concurrency 3) was admitted")
	}
	d1(0, nil)
	if d, err := c.Admit(ctx, ticket("a", "k1", 1)); err != nil {
		t.Fatalf("after one finished: %v", err)
	} else {
		d(0, nil)
	}
	d2(0, nil)
	d3(0, nil)
	if obs["a/rate_limited"] != 2 {
		t.Errorf("refusals %v, want 2 for tenant a", obs)
	}
	for _, s := range []string{"tenant:a", "key:k1"} {
		v, _ := c.callers.Load(s)
		if n := v.(*caller).inflight.Load(); n != 0 {
			t.Errorf("%s: %d in flight after every request finished", s, n)
		}
	}
}

func TestQuotasPerDayAndMonth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { // fake time starts at 2000-01-01 00:00 UTC
		q := new(MemoryQuotas)
		c, err := New(Options{Limits: &Config{Tenants: map[string]Limits{"a": {DailyQuota: 2, MonthlyQuota: 3}}}, Quotas: q, Shed: Shed{Off: true}})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(12 * time.Hour)
		for range 2 {
			if r := admit(c, ticket("a", "", 1)); r != nil {
				t.Fatal(r)
			}
		}
		r := admit(c, ticket("a", "", 1))
		if r == nil || r.Kind != QuotaExceeded || r.RetryAfter != 12*time.Hour || !errors.Is(r, core.ErrRateLimited) {
			t.Fatalf("3rd request of the day: %+v, want QuotaExceeded until midnight (12h)", r)
		}
		if n, _ := q.Add(context.Background(), "tenant:a", "day:2000-01-01", 0); n != 2 {
			t.Errorf("the refused request was given back: day total %d, want 2", n)
		}
		mustAdmit(t, c, "other", "a tenant without quotas")
		time.Sleep(12 * time.Hour)
		mustAdmit(t, c, "a", "the next day")
		r = admit(c, ticket("a", "", 1))
		if r == nil || r.Kind != QuotaExceeded || r.RetryAfter != 30*24*time.Hour {
			t.Fatalf("4th request of the month: %+v, want QuotaExceeded for 30 days", r)
		}
	})
}

func TestPeriods(t *testing.T) {
	day, month, dayEnd, monthEnd := periods(time.Date(2026, 12, 31, 23, 0, 0, 0, time.FixedZone("x", -3600)))
	if day != "day:2027-01-01" || month != "month:2027-01" || !dayEnd.Equal(time.Date(2027, 1, 2, 0, 0, 0, 0, time.UTC)) ||
		!monthEnd.Equal(time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("periods = %s %s %s %s", day, month, dayEnd, monthEnd)
	}
}

// mustAdmit fails the test when a request of tenant (one item) is refused.
func mustAdmit(t *testing.T, c *Controller, tenant, what string) {
	t.Helper()
	if r := admit(c, ticket(tenant, "", 1)); r != nil {
		t.Fatalf("%s: refused: %v", what, r)
	}
}
