package native

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/ferryml/ferry/internal/inference"
	"github.com/ferryml/ferry/internal/modelconfig"
)

// Spec is one generative model as its folder describes it. The config.pbtxt parameters
// (all strings, as Triton's) are:
//
//	tokenizer               a tiktoken encoding (r50k_base, cl100k_base, ...) or a file in the
//	                        version folder (tokenizer.json); default tokenizer.json when it exists
//	chat_template           a named template (plain, chatml, llama3, mistral) or a file in the
//	                        version folder holding a Go text/template; default plain
//	context_length          positions the model takes, prompt and answer (required)
//	max_num_seqs            sequences in one engine step (default 8)
//	max_num_batched_tokens  tokens in one step: decodes first, then prompt chunks (default 512)
//	kv_cache_tokens         the KV cache's size in tokens (default context_length * max_num_seqs)
//	block_size              tokens per KV block (default 16)
//	enable_prefix_caching   share the KV blocks of common prompt prefixes (default true)
//	threads                 ONNX Runtime intra-op threads (default: every core)
//	session.*               ONNX Runtime session config entries, as for V2 models; the engine's
//	                        threads spin between operators unless session.intra_op.allow_spinning
//	                        is "0"
type Spec struct {
	Name             string
	Version          int64  // the version folder's number
	Dir              string // the version folder
	ModelPath        string // Dir/model.onnx
	Tokenizer        string
	ChatTemplate     string
	ContextLength    int
	MaxSeqs          int
	MaxBatchedTokens int
	CacheTokens      int
	BlockSize        int
	PrefixCache      bool
	Threads          int
	SessionConfig    map[string]string // parameters named session.*: ONNX Runtime's session config
}

// Discover returns a Spec for every folder under root whose config names backend
// "llm", served from its newest numeric version folder. Folders with a broken config
// are errors (all of them, joined); other folders are not its business.
func Discover(root string) ([]Spec, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("llm models: %w", err)
	}
	var specs []Spec
	var errs []error
	for _, e := range ents {
		dir := filepath.Join(root, e.Name())
		text, err := os.ReadFile(filepath.Join(dir, "config.pbtxt"))
		if err != nil {
			continue
		}
		cfg, err := modelconfig.Parse(text)
		if err != nil || cfg.GetBackend() != modelconfig.BackendLLM {
			continue // not ours: the V2 repository reports a broken config
		}
		s, err := specOf(e.Name(), dir, cfg)
		if err != nil {
			errs = append(errs, fmt.Errorf("llm model %q: %w", e.Name(), err))
			continue
		}
		specs = append(specs, s)
	}
	return specs, errors.Join(errs...)
}

func specOf(name, dir string, cfg *inference.ModelConfig) (Spec, error) {
	ver, err := newestVersion(dir)
	if err != nil {
		return Spec{}, err
	}
	if cfg.GetName() != "" && cfg.GetName() != name {
		return Spec{}, fmt.Errorf("config name %q does not match its folder", cfg.GetName())
	}
	s, err := Spec{Name: name, PrefixCache: true, ChatTemplate: "plain"}.in(dir, ver)
	if err != nil {
		return Spec{}, err
	}
	s.Tokenizer, _ = modelconfig.Param(cfg, "tokenizer")
	if s.Tokenizer == "" {
		s.Tokenizer = "tokenizer.json"
	}
	if v, ok := modelconfig.Param(cfg, "chat_template"); ok && v != "" {
		s.ChatTemplate = v
	}
	var errs []error
	ints := []struct {
		key  string
		dst  *int
		need bool
	}{
		{"context_length", &s.ContextLength, true}, {"max_num_seqs", &s.MaxSeqs, false},
		{"max_num_batched_tokens", &s.MaxBatchedTokens, false}, {"kv_cache_tokens", &s.CacheTokens, false},
		{"block_size", &s.BlockSize, false}, {"threads", &s.Threads, false},
	}
	for _, p := range ints {
		v, ok := modelconfig.Param(cfg, p.key)
		if !ok {
			if p.need {
				errs = append(errs, modelconfig.ParamError(p.key, "is required"))
			}
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs = append(errs, modelconfig.ParamError(p.key, "%q is not a count", v))
			continue
		}
		*p.dst = n
	}
	if s.SessionConfig, err = modelconfig.SessionEntries(cfg); err != nil {
		errs = append(errs, err)
	}
	if s.PrefixCache, err = modelconfig.ParamBool(cfg, "enable_prefix_caching", true); err != nil {
		errs = append(errs, err)
	}
	return s, errors.Join(errs...)
}

// At is the spec of another version of the same model: the config's parameters are
// the model folder's, shared by its versions; the version folder must hold model.onnx.
func (s Spec) At(version int64) (Spec, error) {
	return s.in(filepath.Dir(s.Dir), version)
}

// in is s at version under the model folder dir.
func (s Spec) in(dir string, version int64) (Spec, error) {
	if version < 0 {
		return Spec{}, fmt.Errorf("version %d: not a version folder number", version)
	}
	s.Version = version
	s.Dir = filepath.Join(dir, strconv.FormatInt(version, 10))
	s.ModelPath = filepath.Join(s.Dir, "model.onnx")
	if _, err := os.Stat(s.ModelPath); err != nil {
		return Spec{}, fmt.Errorf("version %d: %w", version, err)
	}
	return s, nil
}

// newestVersion is the largest numeric folder number in dir.
func newestVersion(dir string) (int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	newest := int64(-1)
	for _, e := range ents {
		if v, err := strconv.ParseInt(e.Name(), 10, 64); err == nil && v >= 0 && e.IsDir() {
			newest = max(newest, v)
		}
	}
	if newest < 0 {
		return 0, errors.New("no numeric version folder")
	}
	return newest, nil
}
