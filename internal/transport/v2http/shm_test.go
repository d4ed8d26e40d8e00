package v2http

import (
	"errors"
	"strings"
	"testing"

	"github.com/ferryml/ferry/internal/core"
)

func TestDecodeShmRegister(t *testing.T) {
	for _, tc := range []struct {
		body string
		want shmRegister
		err  string
	}{
		{`{"key":"/in","offset":4096,"byte_size":64}`, shmRegister{"/in", 4096, 64}, ""},
		{`{"key":"in","byte_size":64,"extra":[1]}`, shmRegister{"in", 0, 64}, ""},
		{``, shmRegister{}, `missing JSON body`},
		{`[]`, shmRegister{}, `malformed JSON body`},
		{`{"offset":0,"byte_size":64}`, shmRegister{}, `"key" must be a string`},
		{`{"key":7,"byte_size":64}`, shmRegister{}, `"key" must be a string`},
		{`{"key":"k"}`, shmRegister{}, `"byte_size" must be a non-negative integer, got nothing`},
		{`{"key":"k","byte_size":-1}`, shmRegister{}, `"byte_size" must be a non-negative integer, got -1`},
		{`{"key":"k","byte_size":"64"}`, shmRegister{}, `got "64"`},
		{`{"key":"k","byte_size":6.4}`, shmRegister{}, `got 6.4`},
		{`{"key":"k","byte_size":64,"offset":1e3}`, shmRegister{}, `"offset" must be a non-negative integer, got 1e3`},
		{`{"key":"k","byte_size":18446744073709551616}`, shmRegister{}, `got 18446744073709551616`},
	} {
		got, err := decodeShmRegister([]byte(tc.body))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, core.ErrInvalid) {
				t.Errorf("decodeShmRegister(%s) err = %v, want ErrInvalid containing %s", tc.body, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("decodeShmRegister(%s) = %+v, %v; want %+v", tc.body, got, err, tc.want)
		}
	}
}

// FuzzDecodeShmRegister: any body decodes or is refused as invalid, never panics.
func FuzzDecodeShmRegister(f *testing.F) {
	f.Add([]byte(`{"key":"/in","offset":4096,"byte_size":64}`))
	f.Add([]byte(`{"key":"k","byte_size":-0}`))
	f.Add([]byte(`{"key":null,"byte_size":null,"offset":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, err := decodeShmRegister(body); err != nil && !errors.Is(err, core.ErrInvalid) {
			t.Fatalf("decodeShmRegister(%q) err = %v, not ErrInvalid", body, err)
		}
	})
}
