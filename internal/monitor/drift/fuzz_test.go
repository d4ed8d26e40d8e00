package drift

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// checkProfile is what any profile a reader accepts must allow: validation, a plan
// and a window built on it.
func checkProfile(t *testing.T, p *Profile) {
	if err := p.Validate(); err != nil {
		t.Fatalf("reader accepted a profile that does not validate: %v", err)
	}
	pl := newPlan(p, "fuzz", ModelConfig{})
	w := newWindow(pl.features, zeroTime)
	for i, f := range pl.features {
		if f.bin != nil {
			for _, v := range []float64{-1e308, 0, 1, f.prof.Edges[0], 1e308} {
				w.num[i].add(f.bin, v)
			}
		}
	}
}

// fuzzReader fuzzes a profile reader from seeds: it must return an error or a
// profile that passes checkProfile, never panic.
func fuzzReader(f *testing.F, seeds []string, read func(io.Reader, ProfileOptions) (*Profile, error)) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if p, err := read(strings.NewReader(s), ProfileOptions{}); err == nil {
			checkProfile(t, p)
		}
	})
}

func FuzzProfileFromCSV(f *testing.F) {
	fuzzReader(f, []string{irisCSV, "a,b\n1,2\n3\n", "a\n\"1\n", "", "a,a\n1,1\n", "x[0]\nNaN\nInf\n-Inf\n1e308\n-1e308\n"}, ProfileFromCSV)
}

func FuzzProfileFromJSONL(f *testing.F) {
	fuzzReader(f, []string{`{"x":[1,2],"l":"a"}` + "\n" + `{"x":[null,3],"l":"b"}`, `[1]`, `{"a":true}`, `{"a":1e400}`, `{"a":{"b":1}}`}, ProfileFromJSONL)
}

func FuzzReadProfile(f *testing.F) {
	p, _ := ProfileFromCSV(strings.NewReader(irisCSV), ProfileOptions{})
	var buf bytes.Buffer
	p.writeJSON(&buf)
	f.Add(buf.String())
	f.Add(`{"rows":1,"features":{"a":{"kind":"numeric","n":1,"edges":[1,1],"counts":[0,1,0],"sums":[0,1,0]}}}`)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ReadProfile(strings.NewReader(s))
		if err != nil {
			return
		}
		checkProfile(t, p)
	})
}
