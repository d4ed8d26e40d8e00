package registry

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestModelCRUD(t *testing.T) {
	eachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		m := must(s.CreateModel(ctx, RegisteredModel{Name: "mlp", Description: "d", Tags: map[string]string{"team": "a"}}))(t)
		if m.Created.IsZero() || m.Updated != m.Created || m.Tags["team"] != "a" {
			t.Fatalf("created %+v", m)
		}
		_, err := s.CreateModel(ctx, RegisteredModel{Name: "mlp"})
		wantErr(t, "second create", err, ErrExists)
		if !strings.Contains(err.Error(), `model "mlp"`) {
			t.Errorf("error %q does not name the model", err)
		}
		must(s.CreateModel(ctx, RegisteredModel{Name: "a-first"}))(t)
		var names []string
		for _, m := range must(s.Models(ctx))(t) {
			names = append(names, m.Name)
		}
		if diff := cmp.Diff([]string{"a-first", "mlp"}, names); diff != "" {
			t.Errorf("Models names (-want +got):\n%s", diff)
		}
		up := must(s.UpdateModel(ctx, RegisteredModel{Name: "mlp", Description: "new", Tags: map[string]string{"x": "y"}}))(t)
		if up.Description != "new" || !cmp.Equal(up.Tags, map[string]string{"x": "y"}) || !up.Created.Equal(m.Created) {
			t.Errorf("updated %+v", up)
		}
		_, err = s.UpdateModel(ctx, RegisteredModel{Name: "nope"})
		wantErr(t, "update missing", err, ErrNotFound)

		must(s.CreateVersion(ctx, ModelVersion{Model: "mlp", Source: versionDir(t, "x")}))(t)
		noErr(t, s.SetAlias(ctx, "mlp", "champion", 1))
		noErr(t, s.DeleteModel(ctx, "mlp"))
		_, err = s.Model(ctx, "mlp")
		wantErr(t, "get deleted", err, ErrNotFound)
		_, err = s.Version(ctx, "mlp", 1)
		wantErr(t, "version of deleted model", err, ErrNotFound)
		wantErr(t, "delete twice", s.DeleteModel(ctx, "mlp"), ErrNotFound)
		// A model of the same name starts over, with no leftover versions or aliases.
		must(s.CreateModel(ctx, RegisteredModel{Name: "mlp"}))(t)
		if vs := must(s.Versions(ctx, "mlp"))(t); len(vs) != 0 {
			t.Errorf("recreated model has versions %v", vs)
		}
		_, err = s.ResolveAlias(ctx, "mlp", "champion")
		wantErr(t, "alias of recreated model", err, ErrNotFound)
	})
}

func TestNameValidation(t *testing.T) {
	long := strings.Repeat("a", 129)
	bad := []struct{ name, want string }{
		{"", "must not be empty"},
		{"   ", "whitespace"},
		{"a/b", `'/'`},
		{"/etc/passwd", `'/'`},
		{`\..\x`, `'/' or '\'`},
		{"..", "'..'"},
		{"model..x", "'..'"},
		{".", "'.'"},
		{"a\x00b", "control"},
		{"a\nb", "control"},
		{long, "128 bytes"},
		{"\xff\xfe", "UTF-8"},
	}
	eachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		for _, tc := range bad {
			_, err := s.CreateModel(ctx, RegisteredModel{Name: tc.name})
			wantErr(t, "CreateModel("+tc.name+")", err, ErrInvalid)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("CreateModel(%q) err = %q, want it to mention %q", tc.name, err, tc.want)
			}
			wantErr(t, "SaveEndpoint", s.SaveEndpoint(ctx, tc.name, []byte(`{}`)), ErrInvalid)
		}
		if n := len(must(s.Models(ctx))(t)); n != 0 {
			t.Errorf("%d models were created from bad names", n)
		}
		if n := auditCount(t, s); n != 0 {
			t.Errorf("%d audit rows for refused changes", n)
		}
		for _, ok := range []string{"mlp", "résumé-v2", "a.b_c-d", strings.Repeat("b", 128), "%2e%2e%2f"} {
			if _, err := s.CreateModel(ctx, RegisteredModel{Name: ok}); err != nil {
				t.Errorf("CreateModel(%q): %v", ok, err)
			}
		}
		must(s.CreateVersion(ctx, ModelVersion{Model: "mlp", Source: versionDir(t, "x")}))(t)
		for _, tc := range []struct{ alias, want string }{
			{"123", "all digits"}, {"latest", "reserved"}, {"a/b", "'/'"}, {"..", "'..'"}, {"", "empty"},
		} {
			err := s.SetAlias(ctx, "mlp", tc.alias, 1)
			wantErr(t, "SetAlias("+tc.alias+")", err, ErrInvalid)
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `model "mlp" alias`) {
				t.Errorf("SetAlias(%q) err = %q, want it to name the alias and mention %q", tc.alias, err, tc.want)
			}
		}
	})
}
