package main

import "testing"

func TestParseByteSize(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    byteSize
		wantErr bool
	}{
		{"0", 0, false},
		{"1048576", 1 << 20, false},
		{"64MiB", 64 << 20, false},
		{"64mib", 64 << 20, false},
		{"64M", 64 << 20, false},
		{"64MB", 64_000_000, false},
		{"2 GiB", 2 << 30, false},
		{"1.5KiB", 1536, false},
		{"512B", 512, false},
		{"1kB", 1000, false},
		{"1T", 1 << 40, false},
		{"", 0, true},
		{"-1", 0, true},
		{"-1MiB", 0, true},
		{"lots", 0, true},
		{"12XB", 0, true},
		{"NaN", 0, true},
		{"99999999999TiB", 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseByteSize(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("parseByteSize(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestByteSizeStringRoundTrips(t *testing.T) {
	for _, b := range []byteSize{0, 512, 1536, 1 << 10, 64 << 20, 3 << 30, 1 << 40, 64_000_000} {
		s := b.String()
		got, err := parseByteSize(s)
		if err != nil || got != b {
			t.Errorf("parseByteSize(%q) (from %d) = %d, %v; want %d", s, int64(b), got, err, int64(b))
		}
	}
	if b := byteSize(64 << 20); b.String() != "64MiB" {
		t.Errorf("64 MiB prints as %q, want 64MiB", b.String())
	}
}

func TestGCHeadroomYieldsToGOGC(t *testing.T) {
	if h := gcHeadroom(defaultGCHeadroom, func(string) string { return "" }); h != 64<<20 {
		t.Errorf("gcHeadroom without GOGC = %d, want 64 MiB", h)
	}
	if h := gcHeadroom(defaultGCHeadroom, func(k string) string { return map[string]string{"GOGC": "200"}[k] }); h != 0 {
		t.Errorf("gcHeadroom with GOGC=200 = %d, want 0 (the operator's GOGC wins)", h)
	}
}
