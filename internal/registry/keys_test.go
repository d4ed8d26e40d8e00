package registry

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func TestKeysCreateLookupRevoke(t *testing.T) {
	eachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := WithActor(context.Background(), "alice", "test")
		before := auditCount(t, s)
		k, full, err := s.CreateKey(ctx, Key{Tenant: "acme", Role: RoleInfer, Models: []string{"mlp*"}})
		noErr(t, err)
		id, secret, ok := ParseKey(full)
		if !ok || id != k.ID || len(secret) < 43 || !strings.HasPrefix(full, "fk_") {
			t.Fatalf("key %q: ParseKey = %q, ok %v; want id %q and a 32-byte secret", full, id, ok, k.ID)
		}
		got, err := s.LookupKey(ctx, id)
		noErr(t, err)
		if got.Tenant != "acme" || got.Role != RoleInfer || len(got.Models) != 1 || got.Models[0] != "mlp*" || !got.Active() {
			t.Fatalf("LookupKey = %+v", got)
		}
		if !KeyMatches(got, secret) || KeyMatches(got, secret+"x") || KeyMatches(got, "") {
			t.Fatal("KeyMatches: the stored hash must match the secret and nothing else")
		}
		if strings.Contains(string(must(json.Marshal(got))(t)), secret) {
			t.Fatal("a key's JSON carries its secret")
		}
		ts := must(s.Tenants(ctx))(t)
		if len(ts) != 1 || ts[0].Name != "acme" {
			t.Fatalf("Tenants = %+v, want the key's tenant created", ts)
		}
		noErr(t, s.RevokeKey(ctx, id))
		noErr(t, s.RevokeKey(ctx, id)) // idempotent
		if got := must(s.LookupKey(ctx, id))(t); got.Active() {
			t.Fatal("revoked key still active")
		}
		wantErr(t, "revoke unknown", s.RevokeKey(ctx, "0000000000000000"), ErrNotFound)
		wantErr(t, "lookup unknown", func() error { _, err := s.LookupKey(ctx, "0000000000000000"); return err }(), ErrNotFound)
		if n := auditCount(t, s) - before; n != 3 {
			t.Fatalf("%d audit rows for create + 2 revokes, want 3 (the second revoke changes nothing but is audited)", n)
		}
		audit := must(s.Audit(ctx, AuditFilter{Object: "key/" + id}))(t)
		if len(audit) == 0 || audit[0].Actor != "alice" || strings.Contains(string(audit[0].Detail), secret) {
			t.Fatalf("audit of key: %+v (want actor alice and no secret)", audit)
		}
	})
}

func TestKeysListAndTenants(t *testing.T) {
	eachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		_, err := s.CreateTenant(ctx, Tenant{Name: "t1", Limits: json.RawMessage(`{"rps": 10}`)})
		noErr(t, err)
		_, err = s.CreateTenant(ctx, Tenant{Name: "t1"})
		wantErr(t, "tenant twice", err, ErrExists)
		_, err = s.CreateTenant(ctx, Tenant{Name: "t2", Limits: json.RawMessage(`{`)})
		wantErr(t, "bad limits", err, ErrInvalid)
		_, err = s.CreateTenant(ctx, Tenant{Name: "../x"})
		wantErr(t, "bad tenant name", err, ErrInvalid)
		for _, role := range []string{RoleInfer, RoleManage, RoleAdmin} {
			_, _, err := s.CreateKey(ctx, Key{Tenant: "t1", Role: role})
			noErr(t, err)
		}
		_, _, err = s.CreateKey(ctx, Key{Tenant: "t3", Role: RoleAdmin})
		noErr(t, err)
		_, _, err = s.CreateKey(ctx, Key{Tenant: "t1", Role: "root"})
		wantErr(t, "bad role", err, ErrInvalid)
		if ks := must(s.ListKeys(ctx, "t1"))(t); len(ks) != 3 {
			t.Fatalf("ListKeys(t1) = %d keys, want 3", len(ks))
		}
		if ks := must(s.ListKeys(ctx, ""))(t); len(ks) != 4 {
			t.Fatalf("ListKeys() = %d keys, want 4", len(ks))
		}
		ts := must(s.Tenants(ctx))(t)
		if len(ts) != 2 || string(ts[0].Limits) != `{"rps": 10}` && string(ts[0].Limits) != `{"rps":10}` {
			t.Fatalf("Tenants = %+v", ts)
		}
	})
}

func FuzzParseKey(f *testing.F) {
	f.Add("fk_0123456789abcdef_" + strings.Repeat("A", 43))
	f.Add("fk__")
	f.Add("fk_0123456789abcdef")
	f.Fuzz(func(t *testing.T, s string) {
		id, secret, ok := ParseKey(s)
		if ok && (s != KeyPrefix+id+"_"+secret || len(id) != 16) {
			t.Fatalf("ParseKey(%q) = %q, %q: does not rebuild the input", s, id, secret)
		}
	})
}
