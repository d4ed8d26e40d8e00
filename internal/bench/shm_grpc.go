package bench

import (
	"github.com/ferryml/ferry/internal/tensor"
)

// prepareShm makes the pool of regions whose sets encode their requests as they are
// made.
func (c *GRPCClient) prepareShm(m Model, samples [][]*tensor.Tensor) (Sender, error) {
	p, err := newShmPool(c.ctl, *c.o.SharedMemory, m, samples, func(s *shmSet) (Sender, error) {
		return c.sender(shmRequests(samples, s, m.Outputs))
	})
	if err != nil {
		return nil, err
	}
	c.shm = p
	return p.sender(), nil
}
