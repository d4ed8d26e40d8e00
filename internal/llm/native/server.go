package native

import (
	"context"
	"errors"
	"sort"

	"golang.org/x/sync/errgroup"

	"github.com/ferryml/ferry/internal/llm"
)

// Server is the native models as one llm.Backend.
type Server struct {
	models map[string]*Model
	names  []string
}

// NewServer serves models by their names.
func NewServer(models ...*Model) *Server {
	s := &Server{models: map[string]*Model{}}
	for _, m := range models {
		s.models[m.spec.Name] = m
		s.names = append(s.names, m.spec.Name)
	}
	sort.Strings(s.names)
	return s
}

// Len is how many models the server holds.
func (s *Server) Len() int { return len(s.models) }

// Run runs every engine's step loop until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, m := range s.models {
		g.Go(func() error { return m.eng.Run(ctx) })
	}
	return g.Wait()
}

// Close closes every engine.
func (s *Server) Close() error {
	var errs []error
	for _, m := range s.models {
		errs = append(errs, m.Close())
	}
	return errors.Join(errs...)
}

// Models lists the native models.
func (s *Server) Models(context.Context) ([]llm.ModelInfo, error) {
	out := make([]llm.ModelInfo, 0, len(s.names))
	for _, n := range s.names {
		out = append(out, s.models[n].Info())
	}
	return out, nil
}

// Generate answers a chat or completion request.
func (s *Server) Generate(ctx context.Context, req *llm.Request, emit func(llm.Delta) error) (llm.Usage, error) {
	m, ok := s.models[req.Model]
	if !ok {
		return llm.Usage{}, llm.ModelNotFound(req.Model)
	}
	return m.generate(ctx, req, emit)
}

// Embed answers an embeddings request.
func (s *Server) Embed(ctx context.Context, req *llm.EmbedRequest) (*llm.EmbedResponse, error) {
	m, ok := s.models[req.Model]
	if !ok {
		return nil, llm.ModelNotFound(req.Model)
	}
	return m.embed(ctx, req)
}
