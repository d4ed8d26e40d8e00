package bench

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ferryml/ferry/internal/tensor"
)

func TestParseConcurrency(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want []int
	}{
		{"1", []int{1}},
		{" 8 ", []int{8}},
		{"1:4", []int{1, 2, 3, 4}},
		{"1:64:x2", []int{1, 2, 4, 8, 16, 32, 64}},
		{"1:8:*2", []int{1, 2, 4, 8}},
		{"1:50:x2", []int{1, 2, 4, 8, 16, 32}},
		{"3:30:x3", []int{3, 9, 27}},
		{"2:10:+4", []int{2, 6, 10}},
		{"2:11:4", []int{2, 6, 10}},
		{"5:5:x2", []int{5}},
	} {
		got, err := ParseConcurrency(tc.spec)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParseConcurrency(%q) = %v, %v; want %v", tc.spec, got, err, tc.want)
		}
	}
}

func TestParseConcurrencyRejects(t *testing.T) {
	for _, tc := range []struct{ spec, wantErr string }{
		{"", `concurrency "": start "" is not a positive integer`},
		{"0", `concurrency "0": start "0" is not a positive integer`},
		{"-1:4", `concurrency "-1:4": start "-1" is not a positive integer`},
		{"4:1", `concurrency "4:1": end 1 is below start 4`},
		{"1:8:x1", `concurrency "1:8:x1": a multiplying step must be at least x2`},
		{"1:8:+0", `concurrency "1:8:+0": step "0" is not a positive integer`},
		{"1:8:y2", `concurrency "1:8:y2": step "y2" is not a positive integer`},
		{"1:2:3:4", `concurrency "1:2:3:4": want N, start:end or start:end:step`},
		{"1:100000", `concurrency "1:100000": more than 1000 levels`},
	} {
		_, err := ParseConcurrency(tc.spec)
		if err == nil || err.Error() != tc.wantErr {
			t.Errorf("ParseConcurrency(%q) err = %v, want %q", tc.spec, err, tc.wantErr)
		}
	}
}

func TestParseShape(t *testing.T) {
	name, shape, err := ParseShape("INPUT0:16,3")
	if err != nil || name != "INPUT0" || !shape.Equal(tensor.Shape{16, 3}) {
		t.Errorf("ParseShape(INPUT0:16,3) = %q, %v, %v", name, shape, err)
	}
	// The name may itself hold a colon; the dimensions follow the last one.
	if name, shape, err = ParseShape("ns:x:4"); err != nil || name != "ns:x" || !shape.Equal(tensor.Shape{4}) {
		t.Errorf("ParseShape(ns:x:4) = %q, %v, %v", name, shape, err)
	}
	for _, bad := range []string{"INPUT0", "INPUT0:", ":4", "INPUT0:4,a", "INPUT0:-2"} {
		if _, _, err := ParseShape(bad); err == nil {
			t.Errorf("ParseShape(%q) accepted a bad shape", bad)
		}
	}
}

func TestParseRates(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want []float64
	}{
		{"250", []float64{250}},
		{"0.5", []float64{0.5}},
		{"100:400:100", []float64{100, 200, 300, 400}},
		{"100:350:+100", []float64{100, 200, 300}},
		{"0.1:0.3:0.1", []float64{0.1, 0.2, 0.30000000000000004}},
		{"100:1000:x2", []float64{100, 200, 400, 800}},
		{" 50:50:10 ", []float64{50}},
		{"3:5", []float64{3, 4, 5}}, // perf_analyzer's step is 1
	} {
		got, err := ParseRates(tc.spec)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParseRates(%q) = %v, %v; want %v", tc.spec, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ spec, wantErr string }{
		{"", `start "" is not a positive number`},
		{"0", `start "0" is not a positive number`},
		{"-5", `start "-5" is not a positive number`},
		{"NaN", `start "NaN" is not a positive number`},
		{"Inf", `start "Inf" is not a positive number`},
		{"100:200:10:1", "want R, start:end or start:end:step"},
		{"200:100:10", "end 100 is below start 200"},
		{"100:200:x1", "a multiplying step must be above x1"},
		{"100:200:0", `step "0" is not a positive number`},
		{"1:100000:0.01", "more than 1000 levels"},
	} {
		if _, err := ParseRates(tc.spec); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParseRates(%q) err = %v, want %q", tc.spec, err, tc.wantErr)
		}
	}
}

func TestParseHeaders(t *testing.T) {
	h, err := ParseHeaders([]string{"Authorization: Bearer a:b", "x-tag:1", "X-Tag: 2"})
	if err != nil || h.Get("Authorization") != "Bearer a:b" || !slices.Equal(h.Values("X-Tag"), []string{"1", "2"}) {
		t.Errorf("ParseHeaders = %v, %v", h, err)
	}
	for _, bad := range []string{"no colon", ": empty name", "bad name: x", "X: a\nb"} {
		if _, err := ParseHeaders([]string{bad}); err == nil || !strings.Contains(err.Error(), "header") {
			t.Errorf("ParseHeaders(%q) err = %v", bad, err)
		}
	}
}

func TestHTTPHeaderGoesWithEveryRequest(t *testing.T) {
	var seen atomic.Pointer[string]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := r.Header.Get("Authorization")
		seen.Store(&v)
		http.Error(w, `{"error":"no"}`, http.StatusNotFound)
	}))
	defer srv.Close()
	c, err := NewHTTP(HTTPOptions{URL: srv.URL, Model: "m", Header: http.Header{"Authorization": {"Bearer t0k"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Model(t.Context()); err == nil {
		t.Fatal("Model succeeded against a server that answers 404")
	}
	if v := seen.Load(); v == nil || *v != "Bearer t0k" {
		t.Errorf("the server saw Authorization %v, want Bearer t0k", v)
	}
	in := &tensor.Tensor{Name: "IN", DType: tensor.FP32, Shape: tensor.Shape{1}, Data: make([]byte, 4)}
	send, err := c.Prepare(Model{Name: "m"}, [][]*tensor.Tensor{{in}})
	if err != nil {
		t.Fatal(err)
	}
	seen.Store(nil)
	_ = send(t.Context(), 0, Step{})
	if v := seen.Load(); v == nil || *v != "Bearer t0k" {
		t.Errorf("infer: the server saw Authorization %v, want Bearer t0k", v)
	}
}
