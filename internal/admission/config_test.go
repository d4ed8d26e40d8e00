package admission

import (
	"strings"
	"testing"
	"time"

	"github.com/ferryml/ferry/internal/inference"
)

func TestDecodeConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`{"default":{"requests_per_second":5,"concurrency":2},
		"tenants":{"big":{"requests_per_second":100,"daily_quota":1000000}},"keys":{"k1":{"items_per_second":10,"item_burst":20}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.For("big"); got != (Limits{RequestsPerSecond: 100, DailyQuota: 1000000}) {
		t.Errorf("For(big) = %+v", got)
	}
	if got := c.For("someone"); got != (Limits{RequestsPerSecond: 5, Concurrency: 2}) {
		t.Errorf("For(someone) = %+v, want the default", got)
	}
	if c.Empty() || !(&Config{Tenants: map[string]Limits{"a": {}}}).Empty() {
		t.Error("Empty is wrong")
	}
}

func TestDecodeConfigNamesWhatIsWrong(t *testing.T) {
	for _, tc := range []struct{ name, body, wantErr string }{
		{"unknown field", `{"default":{"rps":1}}`, `unknown field "rps"`},
		{"negative rate", `{"default":{"requests_per_second":-1}}`, `default.requests_per_second: must be a finite number >= 0`},
		{"negative quota in a tenant", `{"tenants":{"a":{"daily_quota":-5}}}`, `tenants["a"].daily_quota: must be >= 0 (0: no limit), got -5`},
		{"burst without a rate", `{"keys":{"k":{"item_burst":3}}}`, `keys["k"].item_burst: set without items_per_second`},
		{"every error at once", `{"default":{"concurrency":-1,"monthly_quota":-1}}`, "default.concurrency: must be >= 0 (0: no limit), got -1\ndefault.monthly_quota"},
		{"trailing data", `{} {}`, `trailing data`},
		{"not an object", `[1]`, `cannot unmarshal array`},
		{"wrong type", `{"default":{"concurrency":1.5}}`, `default.concurrency`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseConfig(%s) err = %v, want it to contain %q", tc.body, err, tc.wantErr)
			}
		})
	}
}

func FuzzDecodeConfig(f *testing.F) {
	for _, s := range []string{`{}`, `{"default":{"requests_per_second":5,"request_burst":2}}`,
		`{"tenants":{"a":{"items_per_second":1e308,"daily_quota":9223372036854775807}},"keys":{"":{"concurrency":1}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("decoded config fails validation: %v", err)
		}
		// A valid config must build a Controller that admits without panicking.
		ctl, err := New(Options{Limits: c, Shed: Shed{Off: true}})
		if err != nil {
			t.Fatal(err)
		}
		for tenant := range c.Tenants {
			admit(ctl, ticket(tenant, "", 1))
		}
		for key := range c.Keys {
			admit(ctl, ticket("t", key, 3))
		}
		admit(ctl, ticket("", "", 0))
	})
}

func params(kv ...string) *inference.ModelConfig {
	cfg := &inference.ModelConfig{Name: "m", Parameters: map[string]*inference.ModelParameter{}}
	for i := 0; i < len(kv); i += 2 {
		cfg.Parameters[kv[i]] = &inference.ModelParameter{StringValue: kv[i+1]}
	}
	return cfg
}

func TestShedFor(t *testing.T) {
	def := DefaultShed()
	for _, tc := range []struct {
		name    string
		cfg     *inference.ModelConfig
		want    Shed
		wantErr string
	}{
		{"no parameters: the defaults", params(), def, ""},
		{"off", params("shed", "false"), func() Shed { s := def; s.Off = true; return s }(), ""},
		{"objective off", params("shed_latency_objective", "off"), func() Shed { s := def; s.Off = true; return s }(), ""},
		{"tuned", params("shed_latency_objective", "150ms", "shed_min_limit", "2", "shed_max_limit", "50", "shed_initial_limit", "10"),
			Shed{Objective: 150 * time.Millisecond, MinLimit: 2, MaxLimit: 50, InitialLimit: 10, Backoff: def.Backoff, RetryAfter: def.RetryAfter}, ""},
		{"initial follows a low max", params("shed_max_limit", "16"),
			Shed{Objective: def.Objective, MinLimit: 8, MaxLimit: 16, InitialLimit: 16, Backoff: def.Backoff, RetryAfter: def.RetryAfter}, ""},
		{"bad objective", params("shed_latency_objective", "fast"), def, `parameters["shed_latency_objective"]`},
		{"max under min", params("shed_min_limit", "10", "shed_max_limit", "5"), def, `parameters["shed_max_limit"]: must be a whole number from 10`},
		{"bad switch", params("shed", "maybe"), def, `parameters["shed"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ShedFor(tc.cfg, def)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ShedFor = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestControllerReadsTheModelsShedParametersAndReportsLimits(t *testing.T) {
	c, err := New(Options{Shed: DefaultShed()})
	if err != nil {
		t.Fatal(err)
	}
	cfg := params("shed_initial_limit", "8", "shed_min_limit", "1")
	tk := ticket("", "", 1)
	tk.Config = cfg
	var dones []func(time.Duration, error)
	for range 8 {
		d, err := c.Admit(t.Context(), tk)
		if err != nil {
			t.Fatal(err)
		}
		dones = append(dones, d)
	}
	if _, err := c.Admit(t.Context(), tk); err == nil || !strings.Contains(err.Error(), "model 'm' is overloaded") || !strings.Contains(err.Error(), "retry after 1s") {
		t.Fatalf("9th request with shed_initial_limit 8: err %v, want an overload refusal", err)
	}
	if got := c.Limits(); len(got) != 1 || got[0] != (LimitStat{Model: "m", Version: "1", Limit: 8, InFlight: 8}) {
		t.Errorf("Limits() = %+v", got)
	}
	for _, d := range dones {
		d(time.Millisecond, nil)
	}
	tk.Config = params("shed", "false") // a reload with shedding off
	for range 20 {
		if _, err := c.Admit(t.Context(), tk); err != nil {
			t.Fatalf("after a reload with shed false: %v", err)
		}
	}
}
