package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/ferryml/ferry/internal/mgmtapi"
	"github.com/ferryml/ferry/internal/mgmtclient"
)

// jobs_cmd.go: `ferry jobs ...`, a server's batch jobs (started with --jobs-dir)
// through its management API.

func jobsCommand(getenv func(string) string) *cobra.Command {
	r := &apiFlags{}
	cmd := &cobra.Command{Use: "jobs", Short: "Submit, watch and cancel batch jobs on a running server (ferry serve --jobs-dir)"}
	r.bind(cmd, getenv)
	var state string
	list := r.command("list", "List the server's jobs, newest first", cobra.NoArgs, func(cmd *cobra.Command, c *mgmtclient.Client, _ []string) error {
		js, err := c.Jobs(cmd.Context(), state)
		if err != nil {
			return err
		}
		return r.show(cmd.OutOrStdout(), js, func(tw *tabwriter.Writer) {
			fmt.Fprintln(tw, "ID\tSTATE\tMODEL\tINPUT\tROWS\tREJECTED\tRATE\tETA")
			for _, j := range js {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%.0f/s\t%s\n", j.ID, j.State, j.Spec.Model, j.Spec.Input,
					rowsOf(j.Progress), j.Progress.Rejected, j.Progress.RowsPerSecond, eta(j.Progress))
			}
		})
	})
	list.Flags().StringVar(&state, "state", "", "only jobs in this state (queued, running, succeeded, failed, cancelled)")
	cmd.AddCommand(r.submitCommand(), list,
		r.command("status ID", "Show one job's state and progress", cobra.ExactArgs(1), func(cmd *cobra.Command, c *mgmtclient.Client, a []string) error {
			j, err := c.Job(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			return r.showJob(cmd, j)
		}),
		r.command("cancel ID", "Stop a job (its committed chunks stay: submitting it again resumes)", cobra.ExactArgs(1), func(cmd *cobra.Command, c *mgmtclient.Client, a []string) error {
			j, err := c.CancelJob(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			return r.showJob(cmd, j)
		}))
	return cmd
}

func (r *apiFlags) submitCommand() *cobra.Command {
	var spec mgmtapi.JobSpec
	var mapping string
	var wait bool
	cmd := r.command("submit", "Start a batch job on the server: --model, --input and --output (paths under its --jobs-dir, or s3://)", cobra.NoArgs,
		func(cmd *cobra.Command, c *mgmtclient.Client, _ []string) error {
			if mapping != "" {
				b, err := os.ReadFile(mapping)
				if err != nil {
					return fmt.Errorf("--mapping: %w", err)
				}
				if err := yaml.UnmarshalStrict(b, &spec.Mapping); err != nil {
					return fmt.Errorf("--mapping %s: want input: [columns]: %w", mapping, err)
				}
			}
			j, err := c.SubmitJob(cmd.Context(), spec)
			if err != nil {
				return err
			}
			for wait && !j.Done() {
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(time.Second):
				}
				if j, err = c.Job(cmd.Context(), j.ID); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s, %s rows, %d rejected, %.0f rows/s, ETA %s\n", j.ID, j.State, rowsOf(j.Progress), j.Progress.Rejected, j.Progress.RowsPerSecond, eta(j.Progress))
			}
			if err := r.showJob(cmd, j); err != nil {
				return err
			}
			if wait && j.State != mgmtapi.JobSucceeded {
				return fmt.Errorf("job %s %s: %s", j.ID, j.State, j.Error)
			}
			return nil
		})
	f := cmd.Flags()
	f.StringVar(&spec.Model, "model", "", "model to score with")
	f.StringVar(&spec.Version, "model-version", "", "model version (default: the one online requests get)")
	f.StringVar(&spec.Input, "input", "", "input file (.parquet, .csv, .jsonl) under the server's --jobs-dir, or s3://")
	f.StringVar(&spec.Output, "output", "", "output file, beside the input's id columns")
	f.StringVar(&spec.Rejects, "rejects", "", "rows that fail, one JSON line each (default: OUTPUT.rejects.jsonl)")
	f.StringSliceVar(&spec.IDColumns, "id-column", nil, "input columns copied beside the outputs (repeat or comma-separate; default: the row number)")
	f.StringVar(&mapping, "mapping", "", "YAML or JSON file mapping model inputs to columns (input: [col, ...])")
	f.StringVar(&spec.Shard, "shard", "", "score the I-th of N disjoint parts of the input (I/N)")
	f.IntVar(&spec.ChunkRows, "chunk-rows", 0, "rows per committed chunk (0: the server's default)")
	f.IntVar(&spec.Concurrency, "concurrency", 0, "requests in flight (0: the server's default)")
	f.BoolVar(&wait, "wait", false, "follow the job until it ends; exit 1 unless it succeeded")
	return cmd
}

func (r *apiFlags) showJob(cmd *cobra.Command, j mgmtapi.Job) error {
	return r.show(cmd.OutOrStdout(), j, func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "id:\t%s\nstate:\t%s\nmodel:\t%s\ninput:\t%s\noutput:\t%s\nrows:\t%s\nrejected:\t%d\nrate:\t%.0f rows/s\neta:\t%s\n",
			j.ID, j.State, j.Spec.Model, j.Spec.Input, j.Spec.Output, rowsOf(j.Progress), j.Progress.Rejected, j.Progress.RowsPerSecond, eta(j.Progress))
		if j.Error != "" {
			fmt.Fprintf(tw, "error:\t%s\n", strings.ReplaceAll(j.Error, "\n", " "))
		}
	})
}

// rowsOf is "rows/total", or the rows alone while the total is unknown.
func rowsOf(p mgmtapi.JobProgress) string {
	if p.Total < 0 {
		return fmt.Sprint(p.Rows)
	}
	return fmt.Sprintf("%d/%d", p.Rows, p.Total)
}

func eta(p mgmtapi.JobProgress) string {
	if p.ETASeconds < 0 {
		return "-"
	}
	return time.Duration(p.ETASeconds * float64(time.Second)).Round(time.Second).String()
}
