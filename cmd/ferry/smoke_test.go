package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestServeSimpleOverREST(t *testing.T) {
	ts := startServer(t, exampleRepo(t))
	body := `{"id":"42","inputs":[{"name":"INPUT0","shape":[1,16],"datatype":"INT32","data":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]},
	{"name":"INPUT1","shape":[1,16],"datatype":"INT32","data":[[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]]}]}`
	code, _, b := httpDo(t, "POST", ts.URL+"/v2/models/simple/infer", "application/json", strings.NewReader(body))
	if code != 200 {
		t.Fatalf("infer: %d %s", code, b)
	}
	var resp struct {
		ID      string `json:"id"`
		Outputs []struct {
			Name string  `json:"name"`
			Data []int32 `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.ID != "42" || len(resp.Outputs) != 2 {
		t.Fatalf("response %s", b)
	}
	for i := range 16 {
		if resp.Outputs[0].Data[i] != int32(i+1) || resp.Outputs[1].Data[i] != int32(i-1) {
			t.Fatalf("element %d: sum %d diff %d, want %d %d", i, resp.Outputs[0].Data[i], resp.Outputs[1].Data[i], i+1, i-1)
		}
	}
}
