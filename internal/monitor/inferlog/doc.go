// Package inferlog is the inference log: a core.Tap that captures sampled requests and
// their responses (inputs, outputs, status, latency, trace and request ids) and writes
// them to sinks — rolling local files (JSON lines or Parquet), a Kafka topic, and an
// HTTP endpoint as KServe-compatible CloudEvents — and reads the files back by model,
// version, time and id.
//
// Serving never waits for the log. Finished copies what it needs into a pooled capture
// (no encoding on the request goroutine) and hands it to a bounded queue; a dispatcher
// goroutine encodes each entry once as a JSON line and offers it to every sink's own
// bounded queue, each drained by that sink's goroutine. A full queue drops the entry
// and counts it (ferry_inference_log_dropped_total{sink}), so a slow or stuck sink loses
// only its own entries. Close drains every queue into every sink.
package inferlog
