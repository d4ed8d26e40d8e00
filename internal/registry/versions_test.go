package registry

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestVersions(t *testing.T) {
	eachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := WithActor(context.Background(), "ci-pipeline", "nightly training")
		must(s.CreateModel(ctx, RegisteredModel{Name: "mlp"}))(t)
		dir := versionDir(t, "weights-1")
		want := ModelVersion{
			Model: "mlp", Source: dir, Backend: "onnxruntime",
			Signature: Signature{Inputs: []TensorSpec{{Name: "x", Datatype: "FP32", Shape: []int64{-1, 4}}},
				Outputs: []TensorSpec{{Name: "y", Datatype: "FP32", Shape: []int64{-1, 2}}}},
			Tags:    map[string]string{"framework": "torch"},
			Metrics: map[string]float64{"accuracy": 0.93, "loss": 0.125},
			Params:  map[string]string{"lr": "0.01"},
			Lineage: Lineage{RunID: "run-7", DatasetURI: "s3://data/train", DatasetHash: "abc"},
		}
		v1 := must(s.CreateVersion(ctx, want))(t)
		want.Version, want.Stage, want.CreatedBy, want.Digest = 1, StageNone, "ci-pipeline", must(DigestDir(dir))(t)
		if diff := cmp.Diff(want, v1, cmpopts.IgnoreFields(ModelVersion{}, "Created")); diff != "" {
			t.Errorf("CreateVersion (-want +got):\n%s", diff)
		}
		if got := must(s.Version(ctx, "mlp", 1))(t); !cmp.Equal(got, v1) {
			t.Errorf("Version(1) = %+v, want %+v", got, v1)
		}

		// Numbers: max+1, explicit numbers (imports) kept, taken numbers refused.
		v2 := must(s.CreateVersion(ctx, ModelVersion{Model: "mlp", Source: "s3://bucket/mlp/2", Lineage: Lineage{ParentVersion: 1}}))(t)
		v5 := must(s.CreateVersion(ctx, ModelVersion{Model: "mlp", Version: 5, Source: "s3://bucket/mlp/5"}))(t)
		v6 := must(s.CreateVersion(ctx, ModelVersion{Model: "mlp", Source: "s3://bucket/mlp/6"}))(t)
		if v2.Version != 2 || v5.Version != 5 || v6.Version != 6 {
			t.Errorf("versions numbered %d, %d, %d; want 2, 5, 6", v2.Version, v5.Version, v6.Version)
		}
		_, err := s.CreateVersion(ctx, ModelVersion{Model: "mlp", Version: 5, Source: "s3://x"})
		wantErr(t, "taken number", err, ErrExists)
		_, err = s.CreateVersion(ctx, ModelVersion{Model: "nope", Source: "s3://x"})
		wantErr(t, "missing model", err, ErrNotFound)
		_, err = s.Version(ctx, "mlp", 3)
		wantErr(t, "missing version", err, ErrNotFound)
		var nums []int64
		for _, v := range must(s.Versions(ctx, "mlp"))(t) {
			nums = append(nums, v.Version)
		}
		if diff := cmp.Diff([]int64{1, 2, 5, 6}, nums); diff != "" {
			t.Errorf("Versions (-want +got):\n%s", diff)
		}

		before := auditCount(t, s)
		for _, tc := range []struct {
			name string
			v    ModelVersion
			want string
		}{
			{"digest mismatch", ModelVersion{Model: "mlp", Source: dir, Digest: strings.Repeat("ab", 32)}, "digest mismatch"},
			{"digest not hex", ModelVersion{Model: "mlp", Source: "s3://b/k", Digest: "xyz"}, "64 hex digits"},
			{"no source", ModelVersion{Model: "mlp"}, "source is required"},
			{"missing folder", ModelVersion{Model: "mlp", Source: dir + "/nope"}, "not a readable folder"},
			{"NaN metric", ModelVersion{Model: "mlp", Source: "s3://b/k", Metrics: map[string]float64{"auc": math.NaN()}}, `metric "auc"`},
			{"stage at creation", ModelVersion{Model: "mlp", Source: "s3://b/k", Stage: StageProduction}, "starts in stage None"},
			{"missing parent", ModelVersion{Model: "mlp", Source: "s3://b/k", Lineage: Lineage{ParentVersion: 4}}, "parent version 4"},
			{"negative number", ModelVersion{Model: "mlp", Version: -1, Source: "s3://b/k"}, "must be > 0"},
			{"bad signature", ModelVersion{Model: "mlp", Source: "s3://b/k", Signature: Signature{Inputs: []TensorSpec{{Name: "x"}}}}, "datatype"},
		} {
			_, err := s.CreateVersion(ctx, tc.v)
			wantErr(t, tc.name, err, ErrInvalid)
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `model "mlp"`) {
				t.Errorf("%s: err = %q, want it to name the model and mention %q", tc.name, err, tc.want)
			}
		}
		if after := auditCount(t, s); after != before {
			t.Errorf("refused versions wrote %d audit rows", after-before)
		}
		if n := len(must(s.Versions(ctx, "mlp"))(t)); n != 4 {
			t.Errorf("%d versions after refused creations, want 4", n)
		}
		// The caller's digest, when right, is accepted (any case).
		must(s.CreateVersion(ctx, ModelVersion{Model: "mlp", Source: dir, Digest: strings.ToUpper(v1.Digest)}))(t)
	})
}

// TestConcurrentVersionNumbers: creators racing on one model get distinct,
// contiguous numbers (PostgreSQL's row lock, SQLite's write lock).
func TestConcurrentVersionNumbers(t *testing.T) {
	eachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		must(s.CreateModel(ctx, RegisteredModel{Name: "m"}))(t)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 4 {
					if _, err := s.CreateVersion(ctx, ModelVersion{Model: "m", Source: "s3://b/m"}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		vs := must(s.Versions(ctx, "m"))(t)
		for i, v := range vs {
			if v.Version != int64(i+1) {
				t.Fatalf("version %d at position %d; want 1..32 contiguous", v.Version, i)
			}
		}
		if len(vs) != 32 {
			t.Errorf("%d versions, want 32", len(vs))
		}
	})
}

func TestAliases(t *testing.T) {
	eachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		must(s.CreateModel(ctx, RegisteredModel{Name: "mlp"}))(t)
		_, err := s.ResolveAlias(ctx, "mlp", "latest")
		wantErr(t, "latest of empty model", err, ErrNotFound)
		for range 3 {
			must(s.CreateVersion(ctx, ModelVersion{Model: "mlp", Source: "s3://b/mlp"}))(t)
		}
		noErr(t, s.SetAlias(ctx, "mlp", "champion", 1))
		noErr(t, s.SetAlias(ctx, "mlp", "challenger", 3))
		noErr(t, s.SetAlias(ctx, "mlp", "champion", 2))
		for label, want := range map[string]int64{"champion": 2, "challenger": 3, "latest": 3, "1": 1} {
			if got := must(s.ResolveAlias(ctx, "mlp", label))(t); got != want {
				t.Errorf("ResolveAlias(%q) = %d, want %d", label, got, want)
			}
		}
		if diff := cmp.Diff(map[string]int64{"champion": 2, "challenger": 3}, must(s.Aliases(ctx, "mlp"))(t)); diff != "" {
			t.Errorf("Aliases (-want +got):\n%s", diff)
		}
		wantErr(t, "alias to missing version", s.SetAlias(ctx, "mlp", "champion", 9), ErrNotFound)
		wantErr(t, "alias on missing model", s.SetAlias(ctx, "nope", "champion", 1), ErrNotFound)
		_, err = s.ResolveAlias(ctx, "mlp", "7")
		wantErr(t, "missing version number", err, ErrNotFound)
		_, err = s.ResolveAlias(ctx, "mlp", "ghost")
		wantErr(t, "missing alias", err, ErrNotFound)
		noErr(t, s.DeleteAlias(ctx, "mlp", "challenger"))
		wantErr(t, "delete twice", s.DeleteAlias(ctx, "mlp", "challenger"), ErrNotFound)
		_, err = s.ResolveAlias(ctx, "mlp", "challenger")
		wantErr(t, "resolve deleted", err, ErrNotFound)
		moves := must(s.Audit(ctx, AuditFilter{Object: "model/mlp/alias/champion"}))(t)
		if len(moves) != 2 || !strings.Contains(string(moves[1].Detail), `"previous":1`) {
			t.Errorf("champion audit = %+v, want 2 rows, the second naming previous version 1", moves)
		}
	})
}

// TestAliasMoveConcurrent: movers and readers race; a reader always finds the
// alias, at one of the versions movers set.
func TestAliasMoveConcurrent(t *testing.T) {
	eachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		modelWithVersions(t, s, "m", 3)
		noErr(t, s.SetAlias(ctx, "m", "champion", 1))
		const workers, ops = 16, 25
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range ops {
					if w%2 == 0 {
						if err := s.SetAlias(ctx, "m", "champion", int64((w+i)%3+1)); err != nil {
							t.Errorf("mover %d: %v", w, err)
							return
						}
						continue
					}
					v, err := s.ResolveAlias(ctx, "m", "champion")
					if err != nil || v < 1 || v > 3 {
						t.Errorf("reader %d saw version %d, err %v", w, v, err)
						return
					}
				}
			})
		}
		wg.Wait()
		sets := must(s.Audit(ctx, AuditFilter{Action: "alias.set"}))(t)
		if want := 1 + workers/2*ops; len(sets) != want {
			t.Errorf("%d alias.set audit rows, want %d", len(sets), want)
		}
	})
}

func TestStages(t *testing.T) {
	eachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := WithActor(context.Background(), "alice", "passed review")
		modelWithVersions(t, s, "m", 3)
		must(s.TransitionStage(ctx, "m", 1, StageProduction, false))(t)
		must(s.TransitionStage(ctx, "m", 2, StageProduction, false))(t)
		v3 := must(s.TransitionStage(WithActor(ctx, "bob", "canary won"), "m", 3, StageProduction, true))(t)
		if v3.Stage != StageProduction {
			t.Errorf("v3 stage %q", v3.Stage)
		}
		for _, n := range []int64{1, 2} {
			if st := must(s.Version(ctx, "m", n))(t).Stage; st != StageArchived {
				t.Errorf("version %d stage %q after archive_existing, want Archived", n, st)
			}
		}
		hist := must(s.StageHistory(ctx, "m", 1))(t)
		want := []StageChange{
			{Model: "m", Version: 1, From: StageNone, To: StageProduction, Actor: "alice", Reason: "passed review"},
			{Model: "m", Version: 1, From: StageProduction, To: StageArchived, Actor: "bob", Reason: "canary won"},
		}
		if diff := cmp.Diff(want, hist, cmpopts.IgnoreFields(StageChange{}, "At")); diff != "" {
			t.Errorf("StageHistory(1) (-want +got):\n%s", diff)
		}
		if n := len(must(s.StageHistory(ctx, "m", 0))(t)); n != 5 {
			t.Errorf("model history has %d rows, want 5", n)
		}
		_, err := s.TransitionStage(ctx, "m", 1, Stage("Live"), false)
		wantErr(t, "unknown stage", err, ErrInvalid)
		_, err = s.TransitionStage(ctx, "m", 9, StageStaging, false)
		wantErr(t, "missing version", err, ErrNotFound)
		rows := must(s.Audit(ctx, AuditFilter{Object: "model/m/version/3", Action: "version.stage"}))(t)
		if len(rows) != 1 || !strings.Contains(string(rows[0].Detail), `"archived":[1,2]`) || rows[0].Actor != "bob" {
			t.Errorf("stage audit = %+v", rows)
		}
	})
}

// TestConcurrentPromotions: versions promoted at once with archiveExisting
// leave exactly one in Production.
func TestConcurrentPromotions(t *testing.T) {
	eachStore(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		modelWithVersions(t, s, "m", 8)
		var wg sync.WaitGroup
		for v := range int64(8) {
			wg.Go(func() {
				if _, err := s.TransitionStage(ctx, "m", v+1, StageProduction, true); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		prod := 0
		for _, v := range must(s.Versions(ctx, "m"))(t) {
			if v.Stage == StageProduction {
				prod++
			}
		}
		if prod != 1 {
			t.Errorf("%d versions in Production after concurrent promotions, want 1", prod)
		}
	})
}

// modelWithVersions registers model with n versions (s3 sources, numbered 1..n).
func modelWithVersions(t *testing.T, s Store, model string, n int) {
	t.Helper()
	ctx := context.Background()
	must(s.CreateModel(ctx, RegisteredModel{Name: model}))(t)
	for range n {
		must(s.CreateVersion(ctx, ModelVersion{Model: model, Source: "s3://b/" + model}))(t)
	}
}
