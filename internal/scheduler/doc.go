// Package scheduler runs requests for one loaded model version on its pool of backend
// instances. It declares the Instance interface backends implement (without importing
// this package) and knows nothing of HTTP, aliases or the repository. Requests that wait
// for an instance leave the wait when their context ends, without running. An instance
// whose readiness can change after it opened (a remote upstream) also implements
// Readier, which Scheduler.Ready reports to the repository.
//
// Where things go: how requests for one version wait, batch and reach an instance
// (dynamic batching and its adaptive wait, priorities and queue policies, sequences)
// belongs here; anything that knows model names across versions does not.
package scheduler
