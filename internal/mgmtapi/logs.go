package mgmtapi

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// LogQuery selects inference log entries (GET /api/v1/logs): zero fields select
// everything. IDs match a request id or a client request id.
type LogQuery struct {
	Model, Version string
	Since, Until   time.Time
	IDs            []string
	Limit          int // 0: the server's default (DefaultLogLimit)
}

// DefaultLogLimit is the number of entries /api/v1/logs answers without a limit.
const DefaultLogLimit = 1000

// ContentJSONLines is the type of /api/v1/logs's answer: one JSON entry per line.
const ContentJSONLines = "application/x-ndjson"

// Values is q as the route's query parameters: model, version, since and until
// (RFC 3339), id (repeated), limit.
func (q LogQuery) Values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("model", q.Model)
	set("version", q.Version)
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	v["id"] = q.IDs
	return v
}

// ParseLogQuery reads Values' parameters; an id parameter may also hold several ids
// separated by commas. Unknown parameters are refused by name.
func ParseLogQuery(v url.Values) (LogQuery, error) {
	var q LogQuery
	for k, vs := range v {
		s := vs[len(vs)-1]
		var err error
		switch k {
		case "model":
			q.Model = s
		case "version":
			q.Version = s
		case "since":
			q.Since, err = parseTime(k, s)
		case "until":
			q.Until, err = parseTime(k, s)
		case "limit":
			q.Limit, err = strconv.Atoi(s)
			if err != nil || q.Limit < 0 {
				err = fmt.Errorf("limit %q: want a number >= 0", s)
			}
		case "id":
			for _, s := range vs {
				for id := range strings.SplitSeq(s, ",") {
					if id != "" {
						q.IDs = append(q.IDs, id)
					}
				}
			}
		default:
			err = fmt.Errorf("query parameter %q: the log takes model, version, since, until, id, limit", k)
		}
		if err != nil {
			return q, err
		}
	}
	return q, nil
}

func parseTime(k, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return t, fmt.Errorf("%s %q: want an RFC 3339 time", k, s)
	}
	return t, nil
}

// ParseTimeOrAgo reads s as an RFC 3339 time or as a duration before now ("15m",
// also written "-15m"); "" is the zero time. The error says what to write; callers
// name the parameter or flag.
func ParseTimeOrAgo(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(strings.TrimPrefix(s, "-")); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, errors.New("want an RFC 3339 time (2026-12-06T17:00:00Z) or a duration ago (15m)")
}
