package openai

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"

	"github.com/ferryml/ferry/internal/llm"
)

// embeddingBody is a /v1/embeddings request.
type embeddingBody struct {
	Model          *string         `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat *string         `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
	User           *string         `json:"user"`
}

// embedCall is a decoded embeddings request with how its answer is written.
type embedCall struct {
	req        llm.EmbedRequest
	base64     bool // encoding_format "base64": little-endian float32 bytes
	dimensions int  // 0: any; else the vector size the client expects
}

// decodeEmbedding decodes a /v1/embeddings body as decodeChat does a chat's.
func decodeEmbedding(body []byte) (*embedCall, error) {
	var b embeddingBody
	if err := unmarshalBody(body, &b); err != nil {
		return nil, err
	}
	if b.Model == nil || *b.Model == "" {
		return nil, llm.BadRequest("model", "you must provide a model parameter")
	}
	c := &embedCall{req: llm.EmbedRequest{Model: *b.Model}}
	var err error
	if c.req.Input, c.req.Tokens, err = decodeTexts("input", b.Input); err != nil {
		return nil, err
	}
	if b.EncodingFormat != nil {
		switch *b.EncodingFormat {
		case "float":
		case "base64":
			c.base64 = true
		default:
			return nil, llm.BadRequest("encoding_format", "encoding_format must be \"float\" or \"base64\", got %q", *b.EncodingFormat)
		}
	}
	if b.Dimensions != nil {
		if *b.Dimensions < 1 {
			return nil, llm.BadRequest("dimensions", "dimensions must be at least 1, got %d", *b.Dimensions)
		}
		c.dimensions = *b.Dimensions
	}
	if b.User != nil {
		c.req.User = *b.User
	}
	return c, nil
}

// embedding is one vector of the answer: []float32 or a base64 string.
type embedding struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"`
}

type embedUsage struct {
	PromptTokens int `json:"prompt_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

type embedList struct {
	Object string      `json:"object"`
	Data   []embedding `json:"data"`
	Model  string      `json:"model"`
	Usage  embedUsage  `json:"usage"`
}

func (h *Handler) embeddings(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	c, err := decodeEmbedding(body)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	c.req.Key, c.req.Header = apiKey(r), r.Header
	resp, err := h.backend.Embed(r.Context(), &c.req)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	list, err := c.answer(resp)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	h.writeJSON(w, r, list)
}

// answer builds the response body, checking the backend gave one vector per input
// and, when the client named dimensions, that they are the vectors' size (this server
// does not shorten embeddings).
func (c *embedCall) answer(resp *llm.EmbedResponse) (*embedList, error) {
	want := len(c.req.Input) + len(c.req.Tokens)
	if len(resp.Vectors) != want {
		return nil, fmt.Errorf("backend answered %d vectors for %d inputs", len(resp.Vectors), want)
	}
	list := &embedList{Object: "list", Data: make([]embedding, want), Model: c.req.Model,
		Usage: embedUsage{PromptTokens: resp.Usage.PromptTokens, TotalTokens: resp.Usage.PromptTokens}}
	for i, v := range resp.Vectors {
		if c.dimensions != 0 && len(v) != c.dimensions {
			return nil, llm.BadRequest("dimensions", "model %s makes %d-dimensional embeddings and cannot shorten them; got dimensions %d", c.req.Model, len(v), c.dimensions)
		}
		list.Data[i] = embedding{Object: "embedding", Index: i, Embedding: v}
		if c.base64 {
			list.Data[i].Embedding = base64Floats(v)
		}
	}
	return list, nil
}

// base64Floats is v as little-endian float32 bytes in standard base64, what OpenAI
// sends for encoding_format "base64" (and what its SDKs ask for by default).
func base64Floats(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return base64.StdEncoding.EncodeToString(b)
}
