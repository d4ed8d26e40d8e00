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
