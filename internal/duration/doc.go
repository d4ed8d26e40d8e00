// Package duration provides Duration, the time.Duration of Ferry's JSON and YAML
// configurations (rollouts, the inference log, drift, alerts): written "1m30s", read as
// such a string or as a number of seconds.
package duration
