package v2http

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/shm"
)

// Triton's shared memory extension over REST: the region endpoints, and the infer
// request's inputs and requested outputs that name a region instead of carrying data.
// Decoding parameters, bounds, sizes and the copies live in package shm, for both
// transports; this file only routes and speaks JSON.

// sharedMemoryRoutes registers the system and CUDA shared memory endpoints.
func (h *Handler) sharedMemoryRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /v2/systemsharedmemory/status", h.shmStatus)
	m.HandleFunc("GET /v2/systemsharedmemory/region/{region}/status", h.shmStatus)
	m.HandleFunc("POST /v2/systemsharedmemory/region/{region}/register", h.shmRegister)
	m.HandleFunc("POST /v2/systemsharedmemory/unregister", h.shmUnregister)
	m.HandleFunc("POST /v2/systemsharedmemory/region/{region}/unregister", h.shmUnregister)
	m.HandleFunc("GET /v2/cudasharedmemory/status", h.cudaStatus)
	m.HandleFunc("GET /v2/cudasharedmemory/region/{region}/status", h.cudaStatus)
	m.HandleFunc("POST /v2/cudasharedmemory/region/{region}/register", h.cudaRegister)
	m.HandleFunc("POST /v2/cudasharedmemory/unregister", h.ok)
	m.HandleFunc("POST /v2/cudasharedmemory/region/{region}/unregister", h.ok)
}

// shmRegionJSON is one entry of $system_shared_memory_status_response.
type shmRegionJSON struct {
	Name     string `json:"name"`
	Key      string `json:"key"`
	Offset   uint64 `json:"offset"`
	ByteSize uint64 `json:"byte_size"`
}

func (h *Handler) shmStatus(w http.ResponseWriter, r *http.Request) {
	regions, err := h.shm.Status(r.PathValue("region"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	out := make([]shmRegionJSON, len(regions))
	for i, rg := range regions {
		out[i] = shmRegionJSON{Name: rg.Name, Key: rg.Key, Offset: rg.Offset, ByteSize: rg.ByteSize}
	}
	h.writeJSON(w, r, http.StatusOK, out)
}

func (h *Handler) shmRegister(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, h.limits.MaxBodyBytes)
	if err == nil {
		var reg shmRegister
		if reg, err = decodeShmRegister(body); err == nil {
			err = h.shm.Register(r.PathValue("region"), reg.key, reg.offset, reg.byteSize)
		}
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (h *Handler) shmUnregister(w http.ResponseWriter, r *http.Request) {
	var err error
	if name := r.PathValue("region"); name != "" {
		err = h.shm.Unregister(name)
	} else {
		err = h.shm.UnregisterAll()
	}
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// cudaStatus lists no region: this server has no CUDA shared memory.
func (h *Handler) cudaStatus(w http.ResponseWriter, r *http.Request) {
	if name := r.PathValue("region"); name != "" {
		h.writeError(w, r, shm.CUDARegionNotFound(name))
		return
	}
	h.writeJSON(w, r, http.StatusOK, []struct{}{})
}

func (h *Handler) cudaRegister(w http.ResponseWriter, r *http.Request) {
	h.writeError(w, r, shm.ErrCUDAUnsupported)
}

// ok answers 200 with no body: unregistering CUDA regions, of which there are none.
func (h *Handler) ok(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }

// shmRegister is $system_shared_memory_register_request.
type shmRegister struct {
	key              string
	offset, byteSize uint64
}

// decodeShmRegister reads {"key": $string, "offset": $number, "byte_size": $number}.
// The key and byte_size are required; offset defaults to 0; other fields are ignored,
// as Triton ignores them. Sizes must be JSON integers, not strings or fractions.
func decodeShmRegister(body []byte) (shmRegister, error) {
	var raw struct {
		Key      json.RawMessage `json:"key"`
		Offset   json.RawMessage `json:"offset"`
		ByteSize json.RawMessage `json:"byte_size"`
	}
	var reg shmRegister
	if len(bytes.TrimSpace(body)) == 0 {
		return reg, core.Invalidf(`register request: missing JSON body {"key", "offset", "byte_size"}`)
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return reg, core.Invalidf("register request: malformed JSON body: %v", err)
	}
	if raw.Key == nil || json.Unmarshal(raw.Key, &reg.key) != nil {
		return reg, core.Invalidf(`register request: "key" must be a string (the shm_open key)`)
	}
	var err error
	if reg.byteSize, err = jsonUint("byte_size", raw.ByteSize, false); err != nil {
		return reg, err
	}
	reg.offset, err = jsonUint("offset", raw.Offset, true)
	return reg, err
}

// jsonUint reads a non-negative JSON integer field; absent is 0 when optional.
func jsonUint(field string, raw json.RawMessage, optional bool) (uint64, error) {
	tok := bytes.TrimSpace(raw)
	if tok == nil && optional {
		return 0, nil
	}
	n, err := strconv.ParseUint(string(tok), 10, 64)
	if err != nil || len(tok) == 0 || tok[0] < '0' || tok[0] > '9' {
		return 0, core.Invalidf("register request: %q must be a non-negative integer, got %s", field, orMissing(tok))
	}
	return n, nil
}

func orMissing(tok []byte) string {
	if tok == nil {
		return "nothing"
	}
	return string(tok)
}

// pendingShared is an input whose data is in a shared memory region.
type pendingShared struct {
	input int
	ref   shm.Ref
}

// attachShared copies each shared memory input out of its region, and returns the
// buffers it copied into. A BYTES input may be as large as a request body.
func attachShared(req *core.InferRequest, pending []pendingShared, regions *shm.Registry, limits core.Limits) ([][]byte, error) {
	var bufs [][]byte
	for _, p := range pending {
		t := req.Inputs[p.input]
		data, err := regions.ReadTensor(p.ref, t.DType, t.Shape, limits.MaxBodyBytes)
		if err != nil {
			return nil, &core.InputError{Input: t.Name, Reason: err.Error()}
		}
		t.Data = data
		bufs = append(bufs, data)
	}
	return bufs, nil
}

func checkSharedOutput(p core.Parameters) error {
	_, _, err := shm.OutputRefOf(p)
	return err
}
