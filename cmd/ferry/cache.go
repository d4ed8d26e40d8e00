package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/ferryml/ferry/internal/cache"
	"github.com/ferryml/ferry/internal/core"
	"github.com/ferryml/ferry/internal/monitor/metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// newResponseCache builds the server-wide response cache, or nil (no caching) for a
// size of 0: a model that enables response_cache then simply runs every request.
func newResponseCache(size byteSize) *cache.Cache {
	if size <= 0 {
		return nil
	}
	return cache.New(int64(size))
}

// coreCache hands the cache to core; a nil *cache.Cache must become a nil interface, or
// core would hash every request of a caching model for nothing.
func coreCache(c *cache.Cache) core.Cache {
	if c == nil {
		return nil
	}
	return c
}

// registerCache exports ferry_cache_bytes when the server has a cache.
func registerCache(reg prometheus.Registerer, c *cache.Cache) {
	if c != nil {
		reg.MustRegister(metrics.CacheBytes(c.Bytes))
	}
}

// byteSize is a flag holding a number of bytes, written plainly (1048576) or with a
// suffix: kB, MB, GB, TB are powers of 1000; KiB, MiB, GiB, TiB and the one-letter K, M,
// G, T are powers of 1024 (as Docker and the JVM read "64M"). Case is ignored and a
// fraction is allowed ("1.5GiB").
type byteSize int64

var byteSuffixes = []struct {
	suffix string
	mult   float64
}{ // longest first, so "KIB" is not read as "B"
	{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"TIB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40},
	{"B", 1},
}

func parseByteSize(s string) (byteSize, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	mult := 1.0
	for _, bs := range byteSuffixes {
		if strings.HasSuffix(u, bs.suffix) {
			u, mult = strings.TrimSpace(strings.TrimSuffix(u, bs.suffix)), bs.mult
			break
		}
	}
	if n, err := strconv.ParseInt(u, 10, 64); err == nil && mult == 1 {
		if n < 0 {
			return 0, fmt.Errorf("size %q: must not be negative", s)
		}
		return byteSize(n), nil
	}
	f, err := strconv.ParseFloat(u, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("size %q: want a number of bytes, optionally with a suffix such as KiB, MiB, GiB or MB", s)
	}
	if f < 0 {
		return 0, fmt.Errorf("size %q: must not be negative", s)
	}
	v := math.Round(f * mult)
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return byteSize(v), nil
}

// Set implements pflag.Value.
func (b *byteSize) Set(s string) error {
	v, err := parseByteSize(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// String implements pflag.Value.
func (b *byteSize) String() string {
	n := int64(*b)
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// Type implements pflag.Value.
func (b *byteSize) Type() string { return "bytes" }
