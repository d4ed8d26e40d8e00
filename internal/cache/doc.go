// Package cache is the server-wide response cache: a least-recently-used store of
// inference outputs under one byte budget, shared by every model that enables
// response_cache. It knows nothing of models or requests; core computes the keys.
package cache
