package gateway

import (
	"math"
	"sort"
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/llm"
)

// ledger is the one place spend, token and request counts live. The check (reserve)
// and the charge (settle) go through the same accounts under the same mutex, keyed
// by the same canonical (upstream, model) id, so a request is admitted only if its
// worst case fits what is left after every reservation still in flight.
type ledger struct {
	now func() time.Time
	mu  sync.Mutex
	// accounts is guarded by mu; so is every account field below.
	accounts map[string]*account
}

type account struct {
	kind, name, team string
	limits           Limits

	spent, reserved          float64
	periodStart, periodEnd   time.Time // periodEnd zero: the budget never resets
	byModel                  map[string]float64
	requests                 int64
	promptTokens, completion int64

	rpmWindow   time.Time
	rpmCount    int
	tpmWindow   time.Time
	tpmUsed     int
	tpmReserved int
	parallel    int
}

// reservation is one attempt's hold on the budgets and token limits of its accounts.
type reservation struct {
	accts     []*account
	canonical string
	prices    Prices
	cost      float64
	tokens    int
	settled   bool
}

// Spend is one key's or team's use in its current budget period.
type Spend struct {
	Kind        string // "key" or "team"
	Name        string
	Team        string // the key's team; "" for a team or a key without one
	Spent       float64
	Reserved    float64 // worst-case cost of requests in flight
	Budget      float64 // 0: unlimited
	PeriodStart time.Time
	PeriodEnd   time.Time // zero: the period never ends
	Requests    int64
	// PromptTokens and CompletionTokens count the whole life of the account.
	PromptTokens     int64
	CompletionTokens int64
	ByModel          map[string]float64 // canonical "upstream/model" → spent this period
}

func newLedger(now func() time.Time) *ledger {
	return &ledger{now: now, accounts: map[string]*account{}}
}

func (l *ledger) add(kind, name, team string, lim Limits) *account {
	now := l.now()
	a := &account{kind: kind, name: name, team: team, limits: lim, periodStart: now, byModel: map[string]float64{}}
	if lim.BudgetDuration > 0 {
		a.periodEnd = now.Add(time.Duration(lim.BudgetDuration))
	}
	l.accounts[kind+"\x00"+name] = a
	return a
}

// roll starts a new budget period and minute windows when theirs have ended.
func (a *account) roll(now time.Time) {
	if !a.periodEnd.IsZero() && !now.Before(a.periodEnd) {
		d := time.Duration(a.limits.BudgetDuration)
		n := now.Sub(a.periodStart) / d
		a.periodStart = a.periodStart.Add(n * d)
		a.periodEnd = a.periodStart.Add(d)
		a.spent = 0
		a.byModel = map[string]float64{}
	}
	if now.Sub(a.rpmWindow) >= time.Minute {
		a.rpmWindow, a.rpmCount = now.Truncate(time.Minute), 0
	}
	if now.Sub(a.tpmWindow) >= time.Minute {
		a.tpmWindow, a.tpmUsed = now.Truncate(time.Minute), 0
	}
}

func retryAfter(window, now time.Time) int {
	return max(1, int(math.Ceil(window.Add(time.Minute).Sub(now).Seconds())))
}

// admit counts one request against rpm and max_parallel of every account, or none
// of them. release must be called once when the request ends.
func (l *ledger) admit(accts []*account) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for _, a := range accts {
		a.roll(now)
		if a.limits.RPM > 0 && a.rpmCount >= a.limits.RPM {
			return nil, reject("rpm", llm.RateLimited(retryAfter(a.rpmWindow, now), "%s %q is over its limit of %d requests per minute", a.kind, a.name, a.limits.RPM))
		}
		if a.limits.MaxParallel > 0 && a.parallel >= a.limits.MaxParallel {
			return nil, reject("max_parallel", llm.RateLimited(1, "%s %q already has %d requests in flight, its limit", a.kind, a.name, a.limits.MaxParallel))
		}
	}
	for _, a := range accts {
		a.rpmCount++
		a.parallel++
		a.requests++
	}
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, a := range accts {
			a.parallel--
		}
	}, nil
}

// cost is what usage costs at prices (per million tokens).
func cost(p Prices, u llm.Usage) float64 {
	cached := min(u.CachedTokens, u.PromptTokens)
	return (float64(u.PromptTokens-cached)*p.Input + float64(cached)*p.CachedInput + float64(u.CompletionTokens)*p.Output) / 1e6
}

// reserve holds the worst case of one attempt (every prompt token at the dearer
// input price, maxOut completion tokens) against every account's budget and tpm, or
// refuses without holding anything.
func (l *ledger) reserve(accts []*account, canonical string, p Prices, prompt, maxOut int) (*reservation, error) {
	worst := Prices{Input: max(p.Input, p.CachedInput), Output: p.Output}
	r := &reservation{accts: accts, canonical: canonical, prices: p, tokens: prompt + maxOut,
		cost: cost(worst, llm.Usage{PromptTokens: prompt, CompletionTokens: maxOut})}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for _, a := range accts {
		a.roll(now)
		if b := a.limits.Budget; b > 0 && a.spent+a.reserved+r.cost > b {
			return nil, reject("budget", llm.BudgetExceeded("%s %q: this request may cost up to %.6f but %.6f of the budget of %.6f is left this period", a.kind, a.name, r.cost, math.Max(0, b-a.spent-a.reserved), b))
		}
		if t := a.limits.TPM; t > 0 && a.tpmUsed+a.tpmReserved+r.tokens > t {
			return nil, reject("tpm", llm.RateLimited(retryAfter(a.tpmWindow, now), "%s %q: this request may use %d tokens but %d of its %d tokens per minute are left", a.kind, a.name, r.tokens, max(0, t-a.tpmUsed-a.tpmReserved), t))
		}
	}
	for _, a := range accts {
		a.reserved += r.cost
		a.tpmReserved += r.tokens
	}
	return r, nil
}

// settle replaces the reservation by the actual use and returns the actual cost.
// Settling twice does nothing.
func (l *ledger) settle(r *reservation, u llm.Usage) float64 {
	if r == nil {
		return 0
	}
	c := cost(r.prices, u)
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.settled {
		return 0
	}
	r.settled = true
	now := l.now()
	for _, a := range r.accts {
		a.roll(now)
		a.reserved = math.Max(0, a.reserved-r.cost)
		a.tpmReserved -= r.tokens
		a.spent += c
		a.byModel[r.canonical] += c
		a.tpmUsed += u.Total()
		a.promptTokens += int64(u.PromptTokens)
		a.completion += int64(u.CompletionTokens)
	}
	return c
}

// resetPeriods rolls every account; Run calls it so Spend shows fresh periods even
// when no request came.
func (l *ledger) resetPeriods() {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for _, a := range l.accounts {
		a.roll(now)
	}
}

func (l *ledger) spend() []Spend {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	out := make([]Spend, 0, len(l.accounts))
	for _, a := range l.accounts {
		a.roll(now)
		by := make(map[string]float64, len(a.byModel))
		for k, v := range a.byModel {
			by[k] = v
		}
		out = append(out, Spend{Kind: a.kind, Name: a.name, Team: a.team, Spent: a.spent, Reserved: a.reserved,
			Budget: a.limits.Budget, PeriodStart: a.periodStart, PeriodEnd: a.periodEnd, Requests: a.requests,
			PromptTokens: a.promptTokens, CompletionTokens: a.completion, ByModel: by})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	return out
}
