package bench

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/ferryml/ferry/internal/tensor"
)

var _ shmRegistrar = (*HTTPClient)(nil)

// prepareShm makes the pool of regions whose sets encode their bodies as they are made.
func (c *HTTPClient) prepareShm(m Model, samples [][]*tensor.Tensor) (Sender, error) {
	p, err := newShmPool(c, *c.o.SharedMemory, m, samples, func(s *shmSet) (Sender, error) {
		bodies := make([]httpBody, len(samples))
		for i, sample := range samples {
			bodies[i] = shmBody(sample, s.in[i], m.Outputs, s.out)
		}
		return c.sender(bodies), nil
	})
	if err != nil {
		return nil, err
	}
	c.shm = p
	return p.sender(), nil
}

// shmBody is a JSON infer request whose inputs are read from, and whose outputs are
// written to, the regions the refs name.
func shmBody(inputs []*tensor.Tensor, in []shmRef, outputs []string, out []shmRef) httpBody {
	b := []byte(bodyOpening + `},"inputs":[`)
	for i, t := range inputs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendInputHeader(b, t)
		b = appendShmParams(b, in[i])
		b = append(b, '}')
	}
	b = append(b, `],"outputs":[`...)
	for j, name := range outputs {
		if j > 0 {
			b = append(b, ',')
		}
		n, _ := json.Marshal(name) // a string always marshals
		b = append(append(b, `{"name":`...), n...)
		b = appendShmParams(b, out[j])
		b = append(b, '}')
	}
	return httpBody{body: append(b, "]}"...)}
}

func appendShmParams(b []byte, r shmRef) []byte {
	name, _ := json.Marshal(r.region)
	b = append(b, `,"parameters":{"shared_memory_region":`...)
	b = append(b, name...)
	b = append(b, `,"shared_memory_offset":`...)
	b = strconv.AppendInt(b, int64(r.offset), 10)
	b = append(b, `,"shared_memory_byte_size":`...)
	b = strconv.AppendInt(b, int64(r.size), 10)
	return append(b, '}')
}

// registerShm is POST /v2/systemsharedmemory/region/{name}/register.
func (c *HTTPClient) registerShm(ctx context.Context, name, key string, size int) error {
	body, err := json.Marshal(map[string]any{"key": key, "offset": 0, "byte_size": size})
	if err != nil {
		return err
	}
	_, err = c.control(ctx, http.MethodPost, c.root+"/v2/systemsharedmemory/region/"+url.PathEscape(name)+"/register", body)
	return err
}

// unregisterShm is POST /v2/systemsharedmemory/region/{name}/unregister.
func (c *HTTPClient) unregisterShm(ctx context.Context, name string) error {
	_, err := c.control(ctx, http.MethodPost, c.root+"/v2/systemsharedmemory/region/"+url.PathEscape(name)+"/unregister", nil)
	return err
}
