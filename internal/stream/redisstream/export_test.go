package redisstream

// PeakInFlight is the most entries the consumer held read and not acknowledged at once.
func (c *Consumer) PeakInFlight() int {
	c.pending.mu.Lock()
	defer c.pending.mu.Unlock()
	return c.pending.peak
}

// SetHook runs f after a batch is scored ("scored") and after its answers are written
// ("written"), before the XACK; an error from f stops the batch there, as a crash would.
// Set it before Run.
func (c *Consumer) SetHook(f func(stage string) error) { c.hook = f }

// ToEntry exposes the entry conversion to the fuzz test.
var ToEntry = toEntry

// Body is what the consumer scores of an entry, or why it cannot.
func (e entry) Body() ([]byte, error) { return e.body, e.err }
