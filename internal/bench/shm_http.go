package bench

import (
	"github.com/ferryml/ferry/internal/tensor"
	"github.com/ferryml/ferry/internal/v2client"
)

// prepareShm makes the pool of regions whose sets encode their bodies as they are made.
func (c *HTTPClient) prepareShm(m Model, samples [][]*tensor.Tensor) (Sender, error) {
	p, err := newShmPool(c.c, *c.o.SharedMemory, m, samples, func(s *shmSet) (Sender, error) {
		return c.sender(shmRequests(samples, s, m.Outputs))
	})
	if err != nil {
		return nil, err
	}
	c.shm = p
	return p.sender(), nil
}

// shmRequests are the samples' requests whose inputs are read from, and whose outputs
// are written to, the set's regions.
func shmRequests(samples [][]*tensor.Tensor, s *shmSet, outputs []string) []*v2client.Request {
	reqs := make([]*v2client.Request, len(samples))
	for i, sample := range samples {
		reqs[i] = &v2client.Request{Inputs: sample, InputRegions: s.in[i], Outputs: outputs, OutputRegions: s.out}
	}
	return reqs
}
