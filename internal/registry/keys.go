package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Tenants and API keys. A key is "fk_<id>_<secret>": the id (16 hex digits) is
// public and finds the row; the secret (32 random bytes, base64url) is shown
// once, at creation, and only its SHA-256 is stored. A fast hash is enough
// because the secret is 256 random bits, not a password: no dictionary or
// brute force can reach it, so bcrypt's cost would only slow every request.

// KeyPrefix starts every API key, so scanners and people recognise one.
const KeyPrefix = "fk_"

// Roles a key may carry, weakest first; each implies the ones before it.
const (
	RoleInfer  = "infer"
	RoleManage = "manage"
	RoleAdmin  = "admin"
)

// Tenant is a party that owns keys. Limits is JSON owned by the admission
// layer (rates, quotas); the registry only checks that it is JSON.
type Tenant struct {
	Name    string          `json:"name"`
	Limits  json.RawMessage `json:"limits,omitempty"`
	Created time.Time       `json:"created"`
}

// Key is an API key's stored part: never its secret.
type Key struct {
	ID     string   `json:"id"`
	Tenant string   `json:"tenant"`
	Role   string   `json:"role"`
	Models []string `json:"models,omitempty"` // glob patterns of models it may use; none: all
	// Hash is the SHA-256 of the secret; compare with KeyMatches.
	Hash     []byte    `json:"-"`
	Created  time.Time `json:"created"`
	Revoked  time.Time `json:"revoked,omitzero"`
	LastUsed time.Time `json:"last_used,omitzero"`
}

// Active reports whether the key is not revoked.
func (k Key) Active() bool { return k.Revoked.IsZero() }

// ParseKey splits "fk_<id>_<secret>" into its id and secret; ok is false for
// anything else. It never returns part of a malformed key in an error.
func ParseKey(s string) (id, secret string, ok bool) {
	rest, found := strings.CutPrefix(s, KeyPrefix)
	if !found {
		return "", "", false
	}
	id, secret, found = strings.Cut(rest, "_")
	if !found || len(id) != 16 || secret == "" || len(secret) > 128 {
		return "", "", false
	}
	if _, err := hex.DecodeString(id); err != nil {
		return "", "", false
	}
	return id, secret, true
}

// KeyMatches compares secret with the key's stored hash in constant time.
func KeyMatches(k Key, secret string) bool {
	h := sha256.Sum256([]byte(secret))
	return len(k.Hash) == len(h) && subtle.ConstantTimeCompare(h[:], k.Hash) == 1
}

func validRole(r string) bool { return r == RoleInfer || r == RoleManage || r == RoleAdmin }

func (s *sqlStore) CreateTenant(ctx context.Context, t Tenant) (Tenant, error) {
	if err := validTenant(t.Name); err != nil {
		return Tenant{}, err
	}
	if len(t.Limits) == 0 {
		t.Limits = json.RawMessage("{}")
	}
	obj := "tenant " + quote(t.Name)
	if err := checkJSON(obj, "limits", t.Limits); err != nil {
		return Tenant{}, err
	}
	ch := &change{Action: "tenant.create", Object: "tenant/" + t.Name, Detail: map[string]any{"limits": t.Limits}}
	err := s.write(ctx, ch, func(c conn) error {
		_, err := c.exec(ctx, `INSERT INTO tenants (name, limits, created) VALUES (?, ?, ?)`, t.Name, string(t.Limits), ch.At)
		if errors.Is(s.d.classify(err), ErrExists) {
			return errf(ErrExists, obj, "already exists")
		}
		return err
	})
	t.Created = micros(ch.At)
	return t, err
}

func (s *sqlStore) Tenants(ctx context.Context) ([]Tenant, error) {
	ts, err := collect(ctx, s.read(), func(r scanner) (Tenant, error) {
		var t Tenant
		var limits string
		var created int64
		err := r.Scan(&t.Name, &limits, &created)
		t.Limits, t.Created = json.RawMessage(limits), micros(created)
		return t, err
	}, `SELECT name, limits, created FROM tenants ORDER BY name`)
	return ts, s.dbErr("tenants", err)
}

// CreateKey stores a new key for k.Tenant (created if it does not exist) with
// k.Role and k.Models, and returns it with its full secret form, which is
// never available again.
func (s *sqlStore) CreateKey(ctx context.Context, k Key) (Key, string, error) {
	if err := validTenant(k.Tenant); err != nil {
		return Key{}, "", err
	}
	if !validRole(k.Role) {
		return Key{}, "", errf(ErrInvalid, "key of tenant "+quote(k.Tenant), "role %q: want infer, manage or admin", k.Role)
	}
	for _, p := range k.Models {
		if p == "" || len(p) > MaxNameBytes {
			return Key{}, "", errf(ErrInvalid, "key of tenant "+quote(k.Tenant), "model pattern %q: want 1 to %d bytes", p, MaxNameBytes)
		}
	}
	var idb [8]byte
	var sec [32]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return Key{}, "", err
	}
	if _, err := rand.Read(sec[:]); err != nil {
		return Key{}, "", err
	}
	k.ID = hex.EncodeToString(idb[:])
	secret := base64.RawURLEncoding.EncodeToString(sec[:])
	h := sha256.Sum256([]byte(secret))
	k.Hash, k.Revoked, k.LastUsed = h[:], time.Time{}, time.Time{}
	models, err := json.Marshal(append([]string{}, k.Models...))
	if err != nil {
		return Key{}, "", err
	}
	ch := &change{Action: "key.create", Object: "key/" + k.ID, Detail: map[string]any{"tenant": k.Tenant, "role": k.Role, "models": k.Models}}
	err = s.write(ctx, ch, func(c conn) error {
		if _, err := c.exec(ctx, `INSERT INTO tenants (name, created) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, k.Tenant, ch.At); err != nil {
			return err
		}
		_, err := c.exec(ctx, `INSERT INTO api_keys (id, tenant, role, models, hash, created) VALUES (?, ?, ?, ?, ?, ?)`,
			k.ID, k.Tenant, k.Role, string(models), hex.EncodeToString(k.Hash), ch.At)
		return err
	})
	if err != nil {
		return Key{}, "", err
	}
	k.Created = micros(ch.At)
	return k, KeyPrefix + k.ID + "_" + secret, nil
}

const keyColumns = `id, tenant, role, models, hash, created, revoked, last_used`

// ListKeys lists the keys of tenant ("": every tenant), revoked ones too.
func (s *sqlStore) ListKeys(ctx context.Context, tenant string) ([]Key, error) {
	q, args := `SELECT `+keyColumns+` FROM api_keys`, []any{}
	if tenant != "" {
		q += ` WHERE tenant = ?`
		args = append(args, tenant)
	}
	ks, err := collect(ctx, s.read(), scanKey, q+` ORDER BY created, id`, args...)
	return ks, s.dbErr("list keys", err)
}

// LookupKey returns the key with this id, revoked or not (ErrNotFound if none).
func (s *sqlStore) LookupKey(ctx context.Context, id string) (Key, error) {
	k, err := scanKey(s.read().row(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = ?`, id))
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return Key{}, errf(ErrNotFound, "key "+quote(id), "no such key")
		}
		return Key{}, s.dbErr("lookup key", err)
	}
	return k, nil
}

// RevokeKey marks the key revoked; revoking it again changes nothing.
func (s *sqlStore) RevokeKey(ctx context.Context, id string) error {
	ch := &change{Action: "key.revoke", Object: "key/" + id}
	return s.write(ctx, ch, func(c conn) error {
		res, err := c.exec(ctx, `UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked = 0`, ch.At, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var one int
			if err := c.row(ctx, `SELECT 1 FROM api_keys WHERE id = ?`, id).Scan(&one); err != nil {
				return errf(ErrNotFound, "key "+quote(id), "no such key")
			}
		}
		return nil
	})
}

func scanKey(r scanner) (Key, error) {
	var k Key
	var models, hash string
	var created, revoked, used int64
	if err := r.Scan(&k.ID, &k.Tenant, &k.Role, &models, &hash, &created, &revoked, &used); err != nil {
		return Key{}, err
	}
	if err := json.Unmarshal([]byte(models), &k.Models); err != nil {
		return Key{}, errf(ErrInvalid, "key "+quote(k.ID), "stored models: %v", err)
	}
	k.Hash, _ = hex.DecodeString(hash)
	k.Created = micros(created)
	if revoked != 0 {
		k.Revoked = micros(revoked)
	}
	if used != 0 {
		k.LastUsed = micros(used)
	}
	return k, nil
}

func validTenant(name string) error {
	if why := checkName(name); why != "" {
		return errf(ErrInvalid, "tenant "+quote(name), "%s", why)
	}
	return nil
}
