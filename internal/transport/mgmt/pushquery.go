package mgmt

import (
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/ferryml/ferry/internal/mgmtapi"
)

// pushQuery adds the push metadata given as query parameters to m, for pushes from
// curl (-T v.tar '...?run_id=r1&tag=team=ml&metric=acc=0.9'): description, backend,
// run_id, dataset_uri, dataset_hash, parent_version, and repeatable tag, metric and
// param as KEY=VALUE. A parameter also in the JSON metadata is taken from the query.
// Unknown parameters are refused by name.
func pushQuery(q url.Values, m *mgmtapi.VersionMeta) error {
	for _, k := range sortedKeys(q) {
		vs := q[k]
		v := vs[len(vs)-1]
		var err error
		switch k {
		case "description":
			m.Description = v
		case "backend":
			m.Backend = v
		case "run_id":
			m.Lineage.RunID = v
		case "dataset_uri":
			m.Lineage.DatasetURI = v
		case "dataset_hash":
			m.Lineage.DatasetHash = v
		case "parent_version":
			m.Lineage.ParentVersion, err = strconv.ParseInt(v, 10, 64)
			if err != nil || m.Lineage.ParentVersion < 0 {
				return badRequest("query parent_version %q: want a version number", v)
			}
		case "tag":
			m.Tags, err = addPairs(m.Tags, k, vs, func(s string) (string, error) { return s, nil })
		case "param":
			m.Params, err = addPairs(m.Params, k, vs, func(s string) (string, error) { return s, nil })
		case "metric":
			m.Metrics, err = addPairs(m.Metrics, k, vs, func(s string) (float64, error) { return strconv.ParseFloat(s, 64) })
		default:
			return badRequest("query parameter %q: a push takes description, backend, run_id, dataset_uri, dataset_hash, parent_version, tag, metric, param", k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func addPairs[V any](m map[string]V, param string, kvs []string, parse func(string) (V, error)) (map[string]V, error) {
	for _, kv := range kvs {
		k, s, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return m, badRequest("query %s %q: want KEY=VALUE", param, kv)
		}
		v, err := parse(s)
		if err != nil {
			return m, badRequest("query %s %q: the value is not a number", param, kv)
		}
		if m == nil {
			m = map[string]V{}
		}
		m[k] = v
	}
	return m, nil
}

func sortedKeys(q url.Values) []string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
