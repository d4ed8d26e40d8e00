package remote

import "sync"

// budgetReserve is the balance a retry budget starts with and never exceeds: a quiet
// model can still retry a few times in a row.
const budgetReserve = 10

// budget bounds the extra tries (retries and hedges) to a fraction of the first tries,
// like Finagle's RetryBudget and Envoy's retry budgets: each first try deposits ratio
// tokens, each extra try withdraws one. So a failing or slow upstream under load gets at
// most ratio more traffic from retries and hedges, instead of (1+retries) times as much.
type budget struct {
	ratio float64

	mu      sync.Mutex
	balance float64
}

func newBudget(ratio float64) *budget {
	return &budget{ratio: ratio, balance: budgetReserve}
}

// deposit records a first try.
func (b *budget) deposit() {
	if b.ratio == 0 {
		return
	}
	b.mu.Lock()
	b.balance = min(b.balance+b.ratio, budgetReserve)
	b.mu.Unlock()
}

// withdraw asks for an extra try.
func (b *budget) withdraw() bool {
	if b.ratio == 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.balance < 1 {
		return false
	}
	b.balance--
	return true
}
