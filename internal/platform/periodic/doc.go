// Package periodic runs a function at a fixed interval until a context ends: the loop
// that the repository's polling and idle unloading, the remote backend's health checks
// and the GC tuner share.
package periodic
