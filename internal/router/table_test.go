package router

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestTableSetGetDelete(t *testing.T) {
	var tb Table
	if p := tb.Get("mlp"); p != nil {
		t.Fatalf("empty table: Get(mlp) = %+v, want nil", p)
	}
	if all := tb.All(); len(all) != 0 {
		t.Fatalf("empty table: All() = %v, want empty", all)
	}
	p := &Policy{Arms: arms("2", 10, "1", 90)}
	if err := tb.Set("mlp", p); err != nil {
		t.Fatal(err)
	}
	p.Arms[0].Weight = 99 // the caller's copy; the table's must not change
	if got := tb.Get("mlp"); got == nil || got.Arms[0].Weight != 10 {
		t.Fatalf("Get(mlp) = %+v, want the policy as Set (weight 10), untouched by later edits", got)
	}
	if err := tb.Set("tree", &Policy{}); err != nil {
		t.Fatal(err)
	}
	all := tb.All()
	if len(all) != 2 || all["mlp"] == nil || all["tree"] == nil {
		t.Fatalf("All() = %v, want mlp and tree", all)
	}
	delete(all, "mlp") // the caller's map
	if tb.Get("mlp") == nil {
		t.Fatal("deleting from All's map removed mlp from the table")
	}
	tb.Delete("mlp")
	tb.Delete("never-there")
	if tb.Get("mlp") != nil || tb.Get("tree") == nil {
		t.Fatalf("after Delete(mlp): mlp %+v, tree %+v; want nil and tree's policy", tb.Get("mlp"), tb.Get("tree"))
	}
}

func TestTableSetRefuses(t *testing.T) {
	var tb Table
	good := &Policy{Arms: arms("1", 100)}
	if err := tb.Set("mlp", good); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, model string
		p           *Policy
		want        string
	}{
		{"an invalid policy", "mlp", &Policy{Arms: arms("2", 10, "1", 80)}, `router: model "mlp": policy: arms: weights sum to 90, want 100`},
		{"a nil policy", "mlp", nil, `router: model "mlp": policy is nil`},
		{"no model name", "", good, "router: model name is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tb.Set(tc.model, tc.p)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Set(%q, %+v) = %v, want an error with %q", tc.model, tc.p, err, tc.want)
			}
			if got := tb.Get("mlp"); got == nil || got.Arms[0] != (Arm{"1", 100}) {
				t.Fatalf("after a refused Set, Get(mlp) = %+v, want the earlier policy", got)
			}
		})
	}
}

// TestTableConcurrentSetGet: writers move weights (one endpoint at a time, as a rollout
// does) while readers route; a reader must never see weights that do not sum to 100, and
// -race must find nothing.
func TestTableConcurrentSetGet(t *testing.T) {
	var tb Table
	models := []string{"a", "b", "c"}
	for _, m := range models {
		if err := tb.Set(m, &Policy{Arms: arms("2", 0, "1", 100)}); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var readers, writers sync.WaitGroup
	errs := make(chan error, 8)
	for r := range 4 {
		readers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				m := models[(i+r)%len(models)]
				p := tb.Get(m)
				if sum := p.Arms[0].Weight + p.Arms[1].Weight; sum != 100 {
					errs <- fmt.Errorf("reader saw %s with weights %v (sum %d)", m, p.Arms, sum)
					return
				}
				if d := p.Decide(nil); d.Version != "1" && d.Version != "2" {
					errs <- fmt.Errorf("reader: %s decided %+v", m, d)
					return
				}
				if i%64 == 0 {
					for name, q := range tb.All() {
						if q.Arms[0].Weight+q.Arms[1].Weight != 100 {
							errs <- fmt.Errorf("All: %s has weights %v", name, q.Arms)
							return
						}
					}
				}
			}
		})
	}
	for w, m := range models {
		writers.Go(func() {
			// One policy edited in place and Set again each step: Set must copy it.
			p := &Policy{Arms: arms("2", 0, "1", 100)}
			for i := range 2000 {
				c := (i*7 + w) % 101
				p.Arms[0].Weight, p.Arms[1].Weight = c, 100-c
				if err := tb.Set(m, p); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	writers.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for w, m := range models { // no writer's last change was lost to another's copy
		want := (1999*7 + w) % 101
		if got := tb.Get(m).Arms[0].Weight; got != want {
			t.Errorf("%s: final candidate weight %d, want %d (its writer's last Set)", m, got, want)
		}
	}
}
