package objstore

import "testing"

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in, bucket, prefix, wantErr string
	}{
		{in: "s3://models", bucket: "models"},
		{in: "s3://models/", bucket: "models"},
		{in: "s3://models/prod/triton", bucket: "models", prefix: "prod/triton/"},
		{in: "s3://models/prod/triton/", bucket: "models", prefix: "prod/triton/"},
		{in: "/srv/models", wantErr: `model store URL "/srv/models": want s3://bucket/prefix`},
		{in: "s3:///prefix", wantErr: `model store URL "s3:///prefix": no bucket`},
		{in: "s3://models/a/../b", wantErr: `model store URL "s3://models/a/../b": prefix must not contain empty, "." or ".." parts`},
		{in: "s3://models/a//b", wantErr: `model store URL "s3://models/a//b": prefix must not contain empty, "." or ".." parts`},
		{in: "s3://models/p?versionId=3", wantErr: `model store URL "s3://models/p?versionId=3": want s3://bucket/prefix, without user, port, query or fragment`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			bucket, prefix, err := parseURL(tc.in)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("parseURL(%q) err = %v, want %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil || bucket != tc.bucket || prefix != tc.prefix {
				t.Fatalf("parseURL(%q) = %q, %q, %v; want %q, %q", tc.in, bucket, prefix, err, tc.bucket, tc.prefix)
			}
		})
	}
}

func TestRelPath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"simple/config.pbtxt", "simple/config.pbtxt", true},
		{"simple/1/model.onnx", "simple/1/model.onnx", true},
		{"ensemble/1/", "ensemble/1", true},
		{"../escape", "", false},
		{"simple/../../escape", "", false},
		{"/abs", "", false},
		{"a//b", "", false},
		{"./a", "", false},
		{`a\..\b`, "", false},
		{"", "", false},
	} {
		got, ok := relPath(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("relPath(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
