package openai

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/ferryml/ferry/internal/llm"
	"github.com/ferryml/ferry/internal/transport/middleware"
)

// DefaultKeepAlive is how often a waiting stream sends a comment line, so proxies and
// clients with idle timeouts keep the connection while a long prompt is prefilled.
const DefaultKeepAlive = 15 * time.Second

// Options configure a Handler.
type Options struct {
	// Logger receives server-side failures (5xx); nil discards them.
	Logger *slog.Logger
	// KeepAlive is the interval of the SSE comment (": keep-alive") a stream sends
	// while it waits for the backend; 0 means DefaultKeepAlive.
	KeepAlive time.Duration
}

// Handler serves the OpenAI-compatible API over an llm.Backend on the routes it mounts
// (Mount). It holds no per-request state and is safe for concurrent use.
type Handler struct {
	backend   llm.Backend
	log       *slog.Logger
	keepAlive time.Duration
	// now and newID are the clock and the id source of answers; tests fix them so
	// answers compare byte for byte with golden files.
	now   func() time.Time
	newID func(prefix string) string
}

// New builds a Handler over b. It starts nothing and mounts nothing; see Mount.
func New(b llm.Backend, opts Options) *Handler {
	h := &Handler{backend: b, log: opts.Logger, keepAlive: opts.KeepAlive, now: time.Now, newID: randomID}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.keepAlive <= 0 {
		h.keepAlive = DefaultKeepAlive
	}
	return h
}

// Mount registers the OpenAI routes on m, all under /v1.
func (h *Handler) Mount(m *http.ServeMux) {
	m.HandleFunc("POST /v1/chat/completions", h.chat)
	m.HandleFunc("POST /v1/completions", h.completions)
	m.HandleFunc("POST /v1/embeddings", h.embeddings)
	m.HandleFunc("GET /v1/models", h.models)
	m.HandleFunc("GET /v1/models/{model...}", h.model) // ids may hold slashes (org/name)
	// Anything else under /v1 is OpenAI's own 404, in its error shape (its clients
	// parse no other), wrong methods included, as OpenAI answers them.
	m.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		h.writeError(w, r, &llm.Error{Status: http.StatusNotFound, Type: "invalid_request_error",
			Message: fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path)})
	})
}

// randomID is prefix followed by 26 random base32 characters (130 bits).
func randomID(prefix string) string { return prefix + rand.Text() }

// modelObject is one entry of /v1/models.
type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

type modelList struct {
	Object string        `json:"object"`
	Data   []modelObject `json:"data"`
}

func toModelObject(m llm.ModelInfo) modelObject {
	return modelObject{ID: m.ID, Object: "model", Created: m.Created, OwnedBy: m.OwnedBy}
}

func (h *Handler) models(w http.ResponseWriter, r *http.Request) {
	ms, err := h.backend.Models(r.Context())
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	list := modelList{Object: "list", Data: make([]modelObject, len(ms))}
	for i, m := range ms {
		list.Data[i] = toModelObject(m)
	}
	h.writeJSON(w, r, list)
}

func (h *Handler) model(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("model")
	ms, err := h.backend.Models(r.Context())
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	for _, m := range ms {
		if m.ID == id {
			h.writeJSON(w, r, toModelObject(m))
			return
		}
	}
	h.writeError(w, r, llm.ModelNotFound(id))
}

// apiKey is the key of "Authorization: Bearer <key>", "" without one.
func apiKey(r *http.Request) string {
	scheme, key, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(key)
}

// writeJSON answers 200 with v as JSON.
func (h *Handler) writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	body, err := middleware.MarshalJSON(v)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}
