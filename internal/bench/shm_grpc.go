package bench

import (
	"context"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/tensor"
)

var _ shmRegistrar = (*GRPCClient)(nil)

// prepareShm makes the pool of regions whose sets encode their requests as they are
// made.
func (c *GRPCClient) prepareShm(m Model, samples [][]*tensor.Tensor) (Sender, error) {
	p, err := newShmPool(c, *c.o.SharedMemory, m, samples, func(s *shmSet) (Sender, error) {
		reqs := make([]*inference.ModelInferRequest, len(samples))
		for i, sample := range samples {
			reqs[i] = c.shmRequest(sample, s.in[i], m.Outputs, s.out)
		}
		return c.sender(reqs)
	})
	if err != nil {
		return nil, err
	}
	c.shm = p
	return p.sender(), nil
}

// shmRequest is a request whose inputs are read from, and whose outputs are written
// to, the regions the refs name.
func (c *GRPCClient) shmRequest(inputs []*tensor.Tensor, in []shmRef, outputs []string, out []shmRef) *inference.ModelInferRequest {
	r := &inference.ModelInferRequest{ModelName: c.o.Model, ModelVersion: c.o.Version}
	for i, t := range inputs {
		r.Inputs = append(r.Inputs, &inference.ModelInferRequest_InferInputTensor{
			Name: t.Name, Datatype: t.DType.String(), Shape: t.Shape, Parameters: shmParams(in[i]),
		})
	}
	for j, name := range outputs {
		r.Outputs = append(r.Outputs, &inference.ModelInferRequest_InferRequestedOutputTensor{
			Name: name, Parameters: shmParams(out[j]),
		})
	}
	return r
}

func shmParams(r shmRef) map[string]*inference.InferParameter {
	return map[string]*inference.InferParameter{
		"shared_memory_region":    {ParameterChoice: &inference.InferParameter_StringParam{StringParam: r.region}},
		"shared_memory_offset":    {ParameterChoice: &inference.InferParameter_Int64Param{Int64Param: int64(r.offset)}},
		"shared_memory_byte_size": {ParameterChoice: &inference.InferParameter_Int64Param{Int64Param: int64(r.size)}},
	}
}

// registerShm calls SystemSharedMemoryRegister.
func (c *GRPCClient) registerShm(ctx context.Context, name, key string, size int) error {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	_, err := c.api.SystemSharedMemoryRegister(ctx, &inference.SystemSharedMemoryRegisterRequest{
		Name: name, Key: key, ByteSize: uint64(size)})
	return err
}

// unregisterShm calls SystemSharedMemoryUnregister.
func (c *GRPCClient) unregisterShm(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	_, err := c.api.SystemSharedMemoryUnregister(ctx, &inference.SystemSharedMemoryUnregisterRequest{Name: name})
	return err
}
