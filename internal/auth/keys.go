package auth

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ferryml/ferry/internal/registry"
)

// KeyStore finds a stored key by its public id (the registry's Store does).
type KeyStore interface {
	LookupKey(ctx context.Context, id string) (registry.Key, error)
}

// DefaultKeyTTL is how long a looked-up key is trusted without asking the store again:
// a revoked key is refused at most this long after RevokeKey, and a busy server asks
// the database about each key once per TTL instead of once per request.
const DefaultKeyTTL = 5 * time.Second

// maxCachedKeys bounds the cache; ids that do not exist are cached too (so guessing
// costs no database query each), and a flood of them only empties the cache.
const maxCachedKeys = 10000

// keyCache checks "fk_<id>_<secret>" keys against the store through a TTL cache.
type keyCache struct {
	store KeyStore
	ttl   time.Duration
	now   func() time.Time

	mu      sync.Mutex
	entries map[string]cachedKey
}

type cachedKey struct {
	key   registry.Key
	found bool
	at    time.Time
}

func newKeyCache(store KeyStore, ttl time.Duration) *keyCache {
	if ttl <= 0 {
		ttl = DefaultKeyTTL
	}
	return &keyCache{store: store, ttl: ttl, now: time.Now, entries: map[string]cachedKey{}}
}

// errBadKey is every refusal of a key: unknown, wrong secret or revoked look alike to
// the caller, so an answer never tells which ids exist.
var errBadKey = errors.New("the API key is not valid (unknown, wrong or revoked)")

func (c *keyCache) authenticate(ctx context.Context, token string) (Identity, error) {
	id, secret, ok := registry.ParseKey(token)
	if !ok {
		return Identity{}, errBadKey
	}
	e, err := c.lookup(ctx, id)
	if err != nil {
		return Identity{}, err
	}
	if !e.found || !registry.KeyMatches(e.key, secret) || !e.key.Active() {
		return Identity{}, errBadKey
	}
	role, err := ParseRole(e.key.Role)
	if err != nil {
		return Identity{}, errBadKey
	}
	return Identity{Tenant: e.key.Tenant, Subject: e.key.ID, Role: role, Models: e.key.Models, Via: ViaKey}, nil
}

func (c *keyCache) lookup(ctx context.Context, id string) (cachedKey, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[id]
	c.mu.Unlock()
	if ok && now.Sub(e.at) < c.ttl {
		return e, nil
	}
	k, err := c.store.LookupKey(ctx, id)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		e = cachedKey{at: now}
	case err != nil:
		return cachedKey{}, err // the store is down: not the caller's fault, not cached
	default:
		e = cachedKey{key: k, found: true, at: now}
	}
	c.mu.Lock()
	if len(c.entries) >= maxCachedKeys {
		clear(c.entries)
	}
	c.entries[id] = e
	c.mu.Unlock()
	return e, nil
}
