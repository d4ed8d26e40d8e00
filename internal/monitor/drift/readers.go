package drift

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// ProfileFromCSV builds a profile from a CSV file whose first row names the features
// (e.g. "input__0[3]", or names ProfileOptions.Rename maps). A column is numeric when
// its first non-empty value is a number, categorical otherwise or when opt says so;
// empty cells, NaN and ±Inf are counted as invalid and left out.
func ProfileFromCSV(r io.Reader, opt ProfileOptions) (*Profile, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, errors.New("baseline CSV: empty file")
	}
	if err != nil {
		return nil, fmt.Errorf("baseline CSV: header: %w", err)
	}
	names := append([]string(nil), header...)
	seen := map[string]bool{}
	for i, n := range names {
		if n == "" || seen[n] {
			return nil, fmt.Errorf("baseline CSV: header column %d: name %q is empty or repeated", i+1, n)
		}
		seen[n] = true
	}
	b := newBuilder(opt)
	for row := 2; ; row++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil { // csv.ParseError names the line (and a ragged row's field count)
			return nil, fmt.Errorf("baseline CSV: %w", err)
		}
		b.rows++
		for i, s := range rec {
			if err := b.text(names[i], s, func() string { return "baseline CSV: row " + strconv.Itoa(row) }); err != nil {
				return nil, err
			}
		}
	}
	p, err := b.profile()
	if err != nil {
		return nil, fmt.Errorf("baseline CSV: %w", err)
	}
	return p, nil
}

// ProfileFromJSONL builds a profile from JSON lines, one object per row mapping
// feature names to values: a number (numeric), a string (categorical; a numeric
// feature's string is an error), null (missing), or an array of those, whose element j
// is the feature "NAME[j]" as a tensor row's columns are named.
func ProfileFromJSONL(r io.Reader, opt ProfileOptions) (*Profile, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	b := newBuilder(opt)
	for line := 1; sc.Scan(); line++ {
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
			return nil, fmt.Errorf("baseline JSONL: line %d: want a JSON object of feature values: %v", line, errOr(err, "null"))
		}
		b.rows++
		where := func() string { return "baseline JSONL: line " + strconv.Itoa(line) }
		for name, v := range obj {
			if err := b.jsonValue(name, v, where, true); err != nil {
				return nil, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("baseline JSONL: %w", err)
	}
	p, err := b.profile()
	if err != nil {
		return nil, fmt.Errorf("baseline JSONL: %w", err)
	}
	return p, nil
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

func (b *builder) jsonValue(name string, v json.RawMessage, where func() string, top bool) error {
	switch {
	case len(v) == 0 || string(v) == "null":
		b.col(name, "").invalid++
		return nil
	case v[0] == '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("%s, feature %q: %v", where(), name, err)
		}
		c := b.col(name, Categorical)
		if c.kind != Categorical {
			return fmt.Errorf("%s, feature %q: string %q in a numeric feature", where(), name, s)
		}
		c.addCategory(s)
		return nil
	case v[0] == '[' && top:
		var arr []json.RawMessage
		if err := json.Unmarshal(v, &arr); err != nil {
			return fmt.Errorf("%s, feature %q: %v", where(), name, err)
		}
		for j, e := range arr {
			if err := b.jsonValue(name+"["+strconv.Itoa(j)+"]", e, where, false); err != nil {
				return err
			}
		}
		return nil
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil {
		return fmt.Errorf("%s, feature %q: %s is not a number, string or null", where(), name, truncate(string(v)))
	}
	c := b.col(name, Numeric)
	if c.kind == Categorical {
		c.addCategory(string(v))
		return nil
	}
	c.addNumber(f, b.rng)
	return nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
