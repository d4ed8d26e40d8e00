package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryml/ferry/internal/mgmtapi"
	"github.com/ferryml/ferry/internal/monitor/inferlog"
)

// logs_cmd.go: `ferry logs`, the inference log as JSON lines, from a server's
// management API or straight from a log directory (--dir) without a server.

type logsFlags struct {
	api          apiFlags
	dir          string
	model, ver   string
	since, until string
	ids          []string
	limit        int
}

func logsCommand(getenv func(string) string) *cobra.Command {
	f := &logsFlags{}
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Print inference log entries as JSON lines, from a server or a log directory",
		Long: "Print inference log entries (requests with their inputs and outputs) as JSON lines,\n" +
			"oldest first, from a server's /api/v1/logs or, with --dir, from the files of a log directory.\n" +
			"--since and --until take an RFC 3339 time or a duration before now (15m, 2h).",
		Args: cobra.NoArgs,
		RunE: f.run,
	}
	f.api.bind(cmd, getenv)
	_ = cmd.PersistentFlags().MarkHidden("output") // always JSON lines
	fl := cmd.Flags()
	fl.StringVar(&f.dir, "dir", "", "read this log directory instead of asking a server")
	fl.StringVar(&f.model, "model", "", "only this model")
	fl.StringVar(&f.ver, "version", "", "only this model version")
	fl.StringVar(&f.since, "since", "", "only requests from this time on (RFC 3339, or a duration ago: 15m)")
	fl.StringVar(&f.until, "until", "", "only requests up to this time (RFC 3339, or a duration ago)")
	fl.StringSliceVar(&f.ids, "id", nil, "only these request ids or client request ids (repeat or comma-separate)")
	fl.IntVar(&f.limit, "limit", mgmtapi.DefaultLogLimit, "at most this many entries (0: all, with --dir)")
	return cmd
}

func (f *logsFlags) run(cmd *cobra.Command, _ []string) error {
	q, err := f.query(time.Now())
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if f.dir != "" {
		return printDir(cmd, f.dir, q, out)
	}
	f.api.output = "json" // -o is hidden: the answer is JSON lines as it comes
	c, err := f.api.client()
	if err != nil {
		return err
	}
	return c.Logs(cmd.Context(), q, out)
}

func (f *logsFlags) query(now time.Time) (mgmtapi.LogQuery, error) {
	q := mgmtapi.LogQuery{Model: f.model, Version: f.ver, IDs: f.ids, Limit: f.limit}
	var err error
	if q.Since, err = whenFlag("--since", f.since, now); err != nil {
		return q, err
	}
	if q.Until, err = whenFlag("--until", f.until, now); err != nil {
		return q, err
	}
	if f.limit < 0 {
		return q, fmt.Errorf("--limit %d: want a number >= 0", f.limit)
	}
	return q, nil
}

// whenFlag reads an RFC 3339 time or a duration before now.
func whenFlag(name, s string, now time.Time) (time.Time, error) {
	t, err := mgmtapi.ParseTimeOrAgo(s, now)
	if err != nil {
		return t, fmt.Errorf("%s %q: %w", name, s, err)
	}
	return t, nil
}

// printDir reads a log directory without a server.
func printDir(cmd *cobra.Command, dir string, q mgmtapi.LogQuery, out io.Writer) error {
	rd, err := inferlog.Open(dir)
	if err != nil {
		return err
	}
	es, err := rd.Query(cmd.Context(), inferlog.Query{Model: q.Model, Version: q.Version, Since: q.Since, Until: q.Until, IDs: q.IDs, Limit: q.Limit})
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(out)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for i := range es {
		if err := enc.Encode(&es[i]); err != nil {
			return err
		}
	}
	return bw.Flush()
}
