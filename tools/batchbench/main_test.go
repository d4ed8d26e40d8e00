package main

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/bench"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"--concurrency", "1, 16", "--protocols", "grpc", "--rounds", "3"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.levels, []int{1, 16}) || !slices.Equal(o.protocols, []string{"grpc"}) || o.rounds != 3 {
		t.Errorf("levels %v, protocols %v, rounds %d; want [1 16], [grpc], 3", o.levels, o.protocols, o.rounds)
	}
	for _, tc := range []struct{ name, arg, want string }{
		{"a level of zero clients", "--concurrency=1,0", "--concurrency"},
		{"an unknown protocol", "--protocols=http,quic", "--protocols"},
		{"no rounds", "--rounds=0", "--rounds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseFlags([]string{tc.arg}, io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("parseFlags(%s) err = %v, want one naming %s", tc.arg, err, tc.want)
			}
		})
	}
}

func TestReadSampleRefusesFailedRequests(t *testing.T) {
	for _, tc := range []struct {
		name    string
		level   bench.Level
		wantErr string
	}{
		{"a clean run", bench.Level{Requests: 10, PerSecond: 100, P50: 900, ServerAvgBatch: 2}, ""},
		{"a run with errors", bench.Level{Requests: 10, Errors: 2, FirstError: "queue full"}, "2 of 12 requests failed, the first: queue full"},
		{"a run where nothing completed", bench.Level{}, "no request completed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bench.json")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			rep := bench.Report{Mode: "concurrency", Model: "m", Protocol: "grpc", Levels: []bench.Level{tc.level}}
			if err := rep.WriteJSON(f); err != nil {
				t.Fatal(err)
			}
			f.Close()
			s, err := readSample(path)
			if tc.wantErr == "" {
				if err != nil || s != (sample{100, 900, 2}) {
					t.Errorf("readSample = %+v, %v; want {100 900 2}", s, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("readSample err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
