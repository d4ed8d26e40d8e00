package mgmtapi

import (
	"strings"
	"testing"
)

func TestParseVersionMeta(t *testing.T) {
	m, err := ParseVersionMeta([]byte(`{"description":"d","tags":{"a":"b"},"metrics":{"acc":0.5},"lineage":{"run_id":"r","parent_version":2}}`))
	if err != nil {
		t.Fatal(err)
	}
	v := m.Version("mlp")
	if v.Model != "mlp" || v.Tags["description"] != "d" || v.Tags["a"] != "b" || v.Metrics["acc"] != 0.5 || v.Lineage.ParentVersion != 2 {
		t.Errorf("Version = %+v", v)
	}
	if m, err := ParseVersionMeta(nil); err != nil || m.Tags != nil {
		t.Errorf("empty metadata = %+v, %v; want none and no error", m, err)
	}
	for _, tc := range []struct{ in, want string }{
		{`{"version":3}`, `unknown field "version"`},
		{`{"digest":"x"}`, `unknown field "digest"`},
		{`{"metrics":{"acc":"high"}}`, "metrics"},
		{`{"lineage":{"parent_version":-1}}`, "parent_version -1"},
		{`{} {}`, "trailing data"},
		{`{"tags":` + strings.Repeat(" ", MaxMetaBytes) + `{}}`, "limit"},
	} {
		if _, err := ParseVersionMeta([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseVersionMeta(%.40s) err = %v, want it naming %q", tc.in, err, tc.want)
		}
	}
}

// FuzzParseVersionMeta: any input is decoded or refused with an error, never a panic,
// and what is accepted turns into a version of the model asked for.
func FuzzParseVersionMeta(f *testing.F) {
	for _, s := range []string{`{}`, `{"tags":{"a":"b"}}`, `{"lineage":{"parent_version":1}}`, `{"signature":{"inputs":[{"name":"x","datatype":"FP32","shape":[1,2]}]}}`, `[`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseVersionMeta(b)
		if err != nil {
			return
		}
		if v := m.Version("m"); v.Model != "m" || v.Version != 0 || v.Digest != "" || v.Lineage.ParentVersion < 0 {
			t.Errorf("ParseVersionMeta(%q) gave %+v", b, v)
		}
	})
}
