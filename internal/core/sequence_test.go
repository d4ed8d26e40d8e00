package core

import (
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/scheduler"
	"github.com/google/go-cmp/cmp"
)

func TestSequenceParameters(t *testing.T) {
	for _, tc := range []struct {
		name    string
		params  Parameters
		want    *scheduler.Sequence
		wantErr string
	}{
		{"none", Parameters{"priority": int64(1)}, nil, ""},
		{"integer ID with start", Parameters{"sequence_id": int64(42), "sequence_start": true},
			&scheduler.Sequence{ID: 42, Start: true}, ""},
		{"string ID with end", Parameters{"sequence_id": "user-7", "sequence_end": true},
			&scheduler.Sequence{IDString: "user-7", End: true}, ""},
		{"uint64 ID", Parameters{"sequence_id": uint64(1) << 63}, &scheduler.Sequence{ID: 1 << 63}, ""},
		{"JSON number past int64", Parameters{"sequence_id": float64(1 << 63)}, &scheduler.Sequence{ID: 1 << 63}, ""},
		{"flags without an ID", Parameters{"sequence_start": false}, &scheduler.Sequence{}, ""},
		{"negative ID", Parameters{"sequence_id": int64(-1)}, nil, `parameter "sequence_id": want a non-negative integer or a string, got -1`},
		{"fractional ID", Parameters{"sequence_id": 1.5}, nil, `parameter "sequence_id"`},
		{"boolean ID", Parameters{"sequence_id": true}, nil, `parameter "sequence_id"`},
		{"start not a boolean", Parameters{"sequence_id": int64(1), "sequence_start": int64(1)}, nil, `parameter "sequence_start": want a boolean, got 1`},
		{"end not a boolean", Parameters{"sequence_id": int64(1), "sequence_end": "yes"}, nil, `parameter "sequence_end": want a boolean, got yes`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sequenceOf(tc.params)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("sequenceOf(%v) err = %v, want %q", tc.params, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("sequenceOf(%v) mismatch (-want +got):\n%s", tc.params, diff)
			}
		})
	}
}
