package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/objstore/s3test"
	"github.com/ferryml/ferry/tools/onnxgen"
)

const s3TestKey = "AKIDFERRYE2E"

// withS3 points the server at the in-test store through the same AWS_* variables a
// deployment sets, and at its own cache folder.
func withS3(srv *s3test.Server, cache string) serverOption {
	env := map[string]string{
		"AWS_ACCESS_KEY_ID":     s3TestKey,
		"AWS_SECRET_ACCESS_KEY": "secret",
		"AWS_REGION":            "eu-west-1",
		"AWS_ENDPOINT_URL_S3":   srv.URL,
	}
	return func(c *serveConfig) {
		c.store = storeEnvFrom(func(k string) string { return env[k] })
		c.modelCacheDir = cache
	}
}

// s3Infer asks simple for an answer and returns the status and the version that answered.
func s3Infer(t *testing.T, ts *testServer, model string) (int, string, string) {
	t.Helper()
	code, _, b := httpDo(t, "POST", ts.URL+"/v2/models/"+model+"/infer", "application/json", strings.NewReader(simpleBody(1)))
	var r struct {
		Version string `json:"model_version"`
	}
	_ = json.Unmarshal(b, &r)
	return code, r.Version, string(b)
}

// s3Wait polls until cond holds; the store is re-read every 50 ms, so 20 s is generous.
func s3Wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func findEntry(index []indexEntry, name, version string) (indexEntry, bool) {
	for _, e := range index {
		if e.Name == name && (version == "" || e.Version == version) {
			return e, true
		}
	}
	return indexEntry{}, false
}

// TestS3RepositoryServesRefusesCorruptionAndPolls is the S3 acceptance test: a
// repository in an in-test S3 server serves; an object whose bytes do not match the
// store's checksum is refused with an error naming it (a model that never had good files
// is UNAVAILABLE with that reason, a model with good files keeps serving them); a new
// version uploaded is picked up by polling.
func TestS3RepositoryServesRefusesCorruptionAndPolls(t *testing.T) {
	srv := s3test.New(t, "models")
	srv.RequireAccessKey(s3TestKey)
	srv.Put(t, "prod/simple/config.pbtxt", []byte(simpleConfig))
	srv.Put(t, "prod/simple/1/model.onnx", onnxgen.Simple())
	srv.Put(t, "prod/broken/1/model.onnx", onnxgen.Simple())
	srv.Corrupt("prod/broken/1/model.onnx", true) // a byte flips on the way: the ETag (MD5) disagrees
	ts := startServer(t, "s3://models/prod", withS3(srv, t.TempDir()), func(c *serveConfig) {
		c.mode = "poll"
		c.pollInterval = 50 * time.Millisecond
	})

	// The repository serves from the store.
	if code, v, b := s3Infer(t, ts, "simple"); code != 200 || v != "1" {
		t.Fatalf("simple from s3: %d version %q %s", code, v, b)
	}
	// The corrupted object is refused, named, and its model never loads.
	const brokenErr = "object s3://models/prod/broken/1/model.onnx refused: checksum mismatch: the store's ETag says MD5 "
	if e, _ := findEntry(repositoryIndex(t, ts.URL), "broken", ""); e.State != "UNAVAILABLE" || !strings.Contains(e.Reason, brokenErr) {
		t.Errorf("index entry of broken: %+v, want UNAVAILABLE with %q", e, brokenErr)
	}
	if code, _, b := s3Infer(t, ts, "broken"); code != 503 || !strings.Contains(b, brokenErr) {
		t.Errorf("infer broken: %d %s, want 503 naming the object", code, b)
	}
	if code, _, _ := httpDo(t, "GET", ts.URL+"/v2/health/ready", "", nil); code != 503 {
		t.Errorf("ready with a model whose files were all refused: %d, want 503 (strict readiness)", code)
	}

	// Version 2 arrives corrupted: refused, and version 1 keeps serving.
	srv.Put(t, "prod/simple/2/model.onnx", onnxgen.Simple())
	srv.Corrupt("prod/simple/2/model.onnx", true)
	const v2Err = "object s3://models/prod/simple/2/model.onnx refused: checksum mismatch"
	s3Wait(t, "the index names the refused version 2 object", func() bool {
		e, _ := findEntry(repositoryIndex(t, ts.URL), "simple", "1")
		return strings.Contains(e.Reason, v2Err)
	})
	if e, _ := findEntry(repositoryIndex(t, ts.URL), "simple", "1"); e.State != "READY" {
		t.Errorf("simple version 1 after the refused update: %+v, want READY", e)
	}
	if code, v, b := s3Infer(t, ts, "simple"); code != 200 || v != "1" {
		t.Errorf("simple after the refused update: %d version %q %s, want version 1", code, v, b)
	}

	// The good version 2 is picked up by polling and serves; version 1 goes (latest 1).
	srv.Corrupt("prod/simple/2/model.onnx", false)
	s3Wait(t, "version 2 serves", func() bool {
		_, v, _ := s3Infer(t, ts, "simple")
		return v == "2"
	})
	index := repositoryIndex(t, ts.URL)
	if e, ok := findEntry(index, "simple", "2"); !ok || e.State != "READY" || e.Reason != "" {
		t.Errorf("simple version 2 in the index: %+v, want READY without a reason", e)
	}
	if _, ok := findEntry(index, "simple", "1"); ok {
		t.Errorf("simple version 1 still listed after version 2 loaded: %+v", index)
	}

	// A model deleted from the store is unloaded.
	srv.Delete(t, "prod/simple/config.pbtxt")
	srv.Delete(t, "prod/simple/1/model.onnx")
	srv.Delete(t, "prod/simple/2/model.onnx")
	s3Wait(t, "simple unloaded after its objects were deleted", func() bool {
		code, _, _ := s3Infer(t, ts, "simple")
		return code == 404
	})

	_, _, mb := httpDo(t, "GET", ts.URL+"/metrics", "", nil)
	m := string(mb)
	for _, series := range []string{"ferry_model_store_downloads_total", "ferry_model_store_refused_objects_total", "ferry_model_store_deleted_files_total"} {
		if !strings.Contains(m, "\n"+series+" ") || strings.Contains(m, "\n"+series+" 0\n") {
			t.Errorf("/metrics: %s missing or zero", series)
		}
	}
}

// TestS3OnDemandFollowsTheStore: in on-demand mode the store is re-read every poll
// interval too: a model uploaded after start serves on its first request, and a loaded
// model whose new version arrives is unloaded, so its next request loads version 2.
func TestS3OnDemandFollowsTheStore(t *testing.T) {
	srv := s3test.New(t, "models")
	srv.RequireAccessKey(s3TestKey)
	srv.Put(t, "prod/simple/config.pbtxt", []byte(simpleConfig))
	srv.Put(t, "prod/simple/1/model.onnx", onnxgen.Simple())
	ts := startServer(t, "s3://models/prod", withS3(srv, t.TempDir()), func(c *serveConfig) {
		c.mode = "on-demand"
		c.pollInterval = 50 * time.Millisecond
	})
	if code, v, b := s3Infer(t, ts, "simple"); code != 200 || v != "1" {
		t.Fatalf("simple from s3 on demand: %d version %q %s", code, v, b)
	}

	srv.Put(t, "prod/later/config.pbtxt", []byte(strings.Replace(simpleConfig, `name: "simple"`, `name: "later"`, 1)))
	srv.Put(t, "prod/later/1/model.onnx", onnxgen.Simple())
	s3Wait(t, "a model uploaded after start serves", func() bool {
		code, _, _ := s3Infer(t, ts, "later")
		return code == 200
	})

	srv.Put(t, "prod/simple/2/model.onnx", onnxgen.Simple())
	s3Wait(t, "version 2 serves", func() bool {
		code, v, _ := s3Infer(t, ts, "simple")
		return code == 200 && v == "2"
	})
}

// TestS3StartsFromCacheWhenStoreIsDown: a server restarted while the store is unreachable
// serves the files an earlier run verified; with an empty cache it refuses to start.
func TestS3StartsFromCacheWhenStoreIsDown(t *testing.T) {
	srv := s3test.New(t, "models")
	srv.RequireAccessKey(s3TestKey)
	srv.Put(t, "prod/simple/config.pbtxt", []byte(simpleConfig))
	srv.Put(t, "prod/simple/1/model.onnx", onnxgen.Simple())
	cache := t.TempDir()
	first := startServer(t, "s3://models/prod", withS3(srv, cache))
	if code, _, b := s3Infer(t, first, "simple"); code != 200 {
		t.Fatalf("first run: %d %s", code, b)
	}
	first.stop()
	srv.Close()

	again := startServer(t, "s3://models/prod", withS3(srv, cache))
	if code, v, b := s3Infer(t, again, "simple"); code != 200 || v != "1" {
		t.Fatalf("restart with the store down: %d version %q %s", code, v, b)
	}

	cfg := serveConfig{repository: "s3://models/prod", host: "127.0.0.1", mode: "none", drain: time.Second,
		limits: defaultTestLimits(), strictReady: true}
	withS3(srv, t.TempDir())(&cfg)
	s, err := newServer(cfg, testRuntime, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	err = s.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "model store s3://models/prod: listing:") {
		t.Fatalf("start with the store down and an empty cache: %v, want the listing error", err)
	}
}

// TestS3FlagsAndCredentials: a key the store does not know stops the start with the
// store's answer; --model-cache-dir needs an s3:// repository.
func TestS3FlagsAndCredentials(t *testing.T) {
	srv := s3test.New(t, "models")
	srv.RequireAccessKey("AKIDSOMEONEELSE")
	cfg := serveConfig{repository: "s3://models/prod", host: "127.0.0.1", mode: "none", drain: time.Second,
		limits: defaultTestLimits(), strictReady: true}
	withS3(srv, t.TempDir())(&cfg)
	s, err := newServer(cfg, testRuntime, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "InvalidAccessKeyId") {
		t.Fatalf("start with an unknown key: %v, want InvalidAccessKeyId", err)
	}

	cfg = serveConfig{repository: t.TempDir(), modelCacheDir: t.TempDir(), mode: "none", limits: defaultTestLimits()}
	if _, err := newServer(cfg, testRuntime, testLogger()); err == nil || !strings.Contains(err.Error(), "--model-cache-dir: only used with an s3://") {
		t.Fatalf("--model-cache-dir with a folder repository: %v", err)
	}
}
