package v2grpc

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/inference"
)

// RepositoryIndex implements inference.GRPCInferenceServiceServer. Ferry serves one
// repository, so repository_name is not consulted.
func (s *Server) RepositoryIndex(ctx context.Context, req *inference.RepositoryIndexRequest) (*inference.RepositoryIndexResponse, error) {
	entries, err := s.core.RepositoryIndex(ctx, req.GetReady())
	if err != nil {
		return nil, s.statusError(err)
	}
	res := &inference.RepositoryIndexResponse{Models: make([]*inference.RepositoryIndexResponse_ModelIndex, len(entries))}
	for i, e := range entries {
		res.Models[i] = &inference.RepositoryIndexResponse_ModelIndex{Name: e.Name, Version: e.Version, State: e.State, Reason: e.Reason}
	}
	return res, nil
}

// RepositoryModelLoad implements inference.GRPCInferenceServiceServer.
func (s *Server) RepositoryModelLoad(ctx context.Context, req *inference.RepositoryModelLoadRequest) (*inference.RepositoryModelLoadResponse, error) {
	opts, err := loadOptions(req.GetParameters())
	if err != nil {
		return nil, s.statusError(err)
	}
	if err := s.core.LoadModel(ctx, req.GetModelName(), opts); err != nil {
		return nil, s.statusError(err)
	}
	return &inference.RepositoryModelLoadResponse{}, nil
}

// RepositoryModelUnload implements inference.GRPCInferenceServiceServer, with the one
// parameter Triton defines, unload_dependents (a bool_param).
func (s *Server) RepositoryModelUnload(ctx context.Context, req *inference.RepositoryModelUnloadRequest) (*inference.RepositoryModelUnloadResponse, error) {
	dependents := false
	for _, k := range slices.Sorted(maps.Keys(req.GetParameters())) {
		if k != "unload_dependents" {
			return nil, s.statusError(core.Invalidf("unknown unload parameter %q; Ferry accepts only \"unload_dependents\"", k))
		}
		v, ok := req.GetParameters()[k].GetParameterChoice().(*inference.ModelRepositoryParameter_BoolParam)
		if !ok {
			return nil, s.statusError(core.Invalidf("unload parameter \"unload_dependents\" must be a bool_param"))
		}
		dependents = v.BoolParam
	}
	if err := s.core.UnloadModel(ctx, req.GetModelName(), dependents); err != nil {
		return nil, s.statusError(err)
	}
	return &inference.RepositoryModelUnloadResponse{}, nil
}

// loadOptions reads the repository extension's load parameters: "config" (a JSON model
// configuration, string_param) and "file:<path>" (override file contents, bytes_param).
// Anything else is refused by name rather than ignored.
func loadOptions(params map[string]*inference.ModelRepositoryParameter) (core.LoadOptions, error) {
	var opts core.LoadOptions
	for _, k := range slices.Sorted(maps.Keys(params)) {
		choice := params[k].GetParameterChoice()
		switch {
		case k == "config":
			v, ok := choice.(*inference.ModelRepositoryParameter_StringParam)
			if !ok {
				return opts, core.Invalidf("load parameter \"config\" must be a string_param holding the model configuration as JSON")
			}
			opts.Config = v.StringParam
		case strings.HasPrefix(k, "file:"):
			path := strings.TrimPrefix(k, "file:")
			if core.CheckLoadPath(path) != nil { // the path names a file inside the model directory
				return opts, core.Invalidf("load parameter %q: the path must be relative to the model directory, such as \"file:1/model.onnx\"", k)
			}
			v, ok := choice.(*inference.ModelRepositoryParameter_BytesParam)
			if !ok {
				return opts, core.Invalidf("load parameter %q must be a bytes_param holding the file contents", k)
			}
			if opts.Files == nil {
				opts.Files = make(map[string][]byte)
			}
			opts.Files[path] = v.BytesParam
		default:
			return opts, core.Invalidf("unknown load parameter %q; Ferry accepts \"config\" and \"file:<path>\"", k)
		}
	}
	return opts, nil
}
