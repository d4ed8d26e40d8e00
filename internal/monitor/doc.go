// Package monitor is the room for what watches requests and models without being a hop
// on the request path: metrics exports Prometheus metrics. A monitor reads finished
// requests through core's Tap (core.Options.Taps), the repository's load hooks and the
// scheduler's Observer; an inference log, drift detection or a rollout's analysis is a
// new subfolder subscribing to the same tap.
package monitor
