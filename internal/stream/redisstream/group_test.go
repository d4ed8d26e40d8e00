package redisstream_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/redis/go-redis/v9"

	"github.com/ferryml/ferry/internal/stream"
	"github.com/ferryml/ferry/internal/stream/redisstream"
)

// TestTwoConsumersShareTheGroup: two members of one group split the stream between them;
// with no crash every entry is answered exactly once. The metrics report each member
// under its own name.
func TestTwoConsumersShareTheGroup(t *testing.T) {
	k := newKeys(t)
	const n = 3000
	k.add(t, k.name("in"), n, rows)
	p := processor(t)
	var members []*redisstream.Consumer
	for _, name := range []string{"a", "b"} {
		cfg := k.config("shared")
		cfg.Name, cfg.Group, cfg.Consumer, cfg.MaxInFlight = "shared-"+name, "ferry-shared", name, 64
		c, err := redisstream.New(cfg, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, c)
	}
	for _, c := range members {
		run(t, c)
	}
	cfg := members[0].Config()
	waitFor(t, "every entry acknowledged", func() bool { return k.drained(t, cfg) })

	seen := make([]int, n)
	for _, o := range k.read(t, cfg.OutputStream) {
		seen[o.RowID]++
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("row %d answered %d times", id, c)
		}
	}
	a, b := members[0].Stats()[0], members[1].Stats()[0]
	if a.Produced+b.Produced != n || a.Produced == 0 || b.Produced == 0 {
		t.Errorf("answers per member: %d + %d, want both > 0, %d in all", a.Produced, b.Produced, n)
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(stream.Collector(func() []stream.Stats { return append(members[0].Stats(), members[1].Stats()...) }))
	if got, err := testutil.GatherAndCount(reg, "ferry_stream_produced_total"); err != nil || got != 2 {
		t.Fatalf("produced series: %d, %v", got, err)
	}
	text, err := testutil.CollectAndFormat(stream.Collector(members[0].Stats), expfmt.TypeTextPlain, "ferry_stream_produced_total")
	if want := `ferry_stream_produced_total{broker="redis",consumer="shared-a",partition="0",topic="` + cfg.Stream + `"}`; err != nil || !strings.Contains(string(text), want) {
		t.Errorf("exposition %s (%v), want a series %s", text, err, want)
	}
}

// TestEntriesDeletedWhilePendingAreAcknowledged: entries a crashed member had read and
// that were deleted from the stream since come back from its pending list without
// fields; the restarted member acknowledges them without an answer and answers the rest.
func TestEntriesDeletedWhilePendingAreAcknowledged(t *testing.T) {
	k := newKeys(t)
	ctx := context.Background()
	cfg := k.config("deleted")
	cfg.Consumer = "x"
	ids := k.add(t, cfg.Stream, 10, rows)
	group := "ferry-deleted"
	if err := k.rdb.XGroupCreate(ctx, cfg.Stream, group, "0").Err(); err != nil {
		t.Fatal(err)
	}
	// A member that reads four entries and dies; two of them are then deleted.
	if err := k.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "x", Streams: []string{cfg.Stream, ">"}, Count: 4, Block: -1}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := k.rdb.XDel(ctx, cfg.Stream, ids[1], ids[2]).Err(); err != nil {
		t.Fatal(err)
	}
	c, err := redisstream.New(cfg, processor(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	run(t, c)
	waitFor(t, "every entry acknowledged", func() bool {
		g := k.group(t, cfg.Stream, group)
		return g.Pending == 0 && g.EntriesRead >= 10
	})
	var got []int
	for _, o := range k.read(t, cfg.OutputStream) {
		got = append(got, o.RowID)
	}
	if want := []int{0, 3, 4, 5, 6, 7, 8, 9}; !slices.Equal(got, want) {
		t.Errorf("answered rows %v, want %v", got, want)
	}
	if dead := k.read(t, cfg.Stream+".dlq"); len(dead) != 0 {
		t.Errorf("deleted entries dead-lettered: %+v", dead)
	}
}
