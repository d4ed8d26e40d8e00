// Package remote serves a model that runs on another V2 (Open Inference Protocol)
// server: Triton, KServe, or another Ferry. It forwards each (batched) request and
// protects both sides from a slow or failing upstream. It implements the scheduler's
// Instance without importing it, like every backend, so dynamic batching and instance
// groups apply unchanged.
//
// # Configuration
//
// A model selects it with `backend: "remote"` and names the upstream in its parameters
// (string values); each version folder may be empty:
//
//	backend: "remote"
//	parameters { key: "url" value: { string_value: "grpc://10.0.0.7:8001" } }
//	parameters { key: "hedge" value: { string_value: "p95" } }
//
//	url               http://host:port (V2 REST, binary tensor extension) or
//	                  grpc://host:port (V2 gRPC, raw contents); https:// and
//	                  grpcs:// for the same over TLS; required
//	model_name        the upstream's model; default: this model's name
//	model_version     the upstream's version; default: the upstream's choice
//	timeout           per try (default 30s)
//	retries           extra tries after a retryable failure (default 2)
//	retry_budget      extra tries (retries and hedges) per first try, 0..1 (default 0.2)
//	hedge             "off" (default), a quantile of recent latencies ("p95"), or a delay ("20ms")
//	breaker_failures  consecutive failures that open the circuit; 0 never (default 5)
//	breaker_cooldown  how long it stays open before a probe (default 5s)
//	health_interval   how often upstream readiness is checked, or "off" (default 5s)
//	tls_ca_file       PEM certificates to trust instead of the system's roots
//	tls_server_name   the name the upstream's certificate must carry (default: url's host)
//	tls_cert_file     with tls_key_file: a client certificate, for upstreams that ask
//	tls_key_file      for one (mutual TLS); both PEM
//
// Unknown parameters are refused by name. Inputs and outputs come from the config when
// it lists them all with data types and dims; otherwise [Backend.Inspect] reads the
// upstream's model metadata at load, and an unreachable upstream fails the load.
// Auto-complete then takes max_batch_size from the upstream's model configuration
// (GET .../config or ModelConfig, which Triton and Ferry serve), or gives 4 when the
// upstream has none and every tensor has a dynamic first dimension.
//
// # Failure handling
//
// A try is one call to the upstream, bounded by the per-try timeout. Its outcome is a
// success, a refusal (the upstream answered 4xx, INVALID_ARGUMENT, NOT_FOUND, ...: not
// retried; a malformed request stays a 400 / INVALID_ARGUMENT at our edge), a failure
// (transport error, timeout, 5xx, UNAVAILABLE, INTERNAL: retried; 503 / UNAVAILABLE at
// our edge when the upstream is down or timing out), or abandoned (cancelled by us).
//
//   - Retries: a failure is retried after a jittered exponential pause (base 25 ms) up
//     to `retries` times, each retry paid from the retry budget.
//   - Retry budget: a token bucket like Finagle's RetryBudget and Envoy's retry budgets.
//     Each request deposits retry_budget tokens, each extra try (retry or hedge) takes
//     one; it starts with, and holds at most, 10. Under sustained failure the upstream
//     sees at most retry_budget more traffic, never (1+retries) times as much.
//   - Hedging: when the first try has not answered by the hedge delay, a second try goes
//     out (budget permitting) and the first success wins; the other try is cancelled.
//     The quantile is taken over the last 1000 try latencies and only once 20 are known.
//     A try cut short by the winner is recorded with the time it ran, a lower bound, so
//     the window does not forget that slow tries exist and the delay stays honest.
//     Hedge only idempotent models: a stateful (sequence) upstream would see the
//     request twice.
//   - Circuit breaker: after breaker_failures failed tries in a row the circuit opens
//     and requests fail at once with "upstream circuit open" (503 / UNAVAILABLE at our
//     edge). After the cooldown one request is let through as a probe: success closes
//     the circuit, failure opens it for another cooldown.
//
// # Readiness
//
// Every instance of a model version shares one upstream connection and one health
// check, which asks the upstream's model readiness (GET /v2/models/{m}/ready, or
// ModelReady) at load and every health_interval. [Instance.Ready] returns the last
// check's error; the repository treats a version whose instances are all not ready as
// UNAVAILABLE (not ready, not picked for requests) until a check passes. Server
// readiness deliberately ignores it: an upstream outage is not fixed by taking this
// server out of its load balancer. The breaker and the health check are independent:
// the breaker reacts to request failures within a few requests, the health check to an
// upstream that is down or has unloaded the model, within one interval.
//
// Requests and responses use the binary forms (REST binary extension, gRPC raw
// contents), which carry tensors as the same raw bytes Ferry holds; an upstream that
// answers with JSON data or typed contents is read too.
package remote
