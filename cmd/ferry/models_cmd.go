package main

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ferryml/ferry/internal/mgmtapi"
	"github.com/ferryml/ferry/internal/mgmtclient"
	"github.com/ferryml/ferry/internal/registry"
)

// models_cmd.go: `ferry models ...`, the registry through a server's management API,
// and what every management command shares: --server, -o and the printing.

// defaultServer is where management commands go without --server or $FERRY_SERVER.
const defaultServer = "http://127.0.0.1:8000"

// apiFlags holds the flags every management command takes.
type apiFlags struct {
	server string
	output string
	user   string // the audit trail's actor: cli:$USER
	apiKey string // $FERRY_API_KEY: sent as Authorization: Bearer (security.go)
}

// bind adds --server and -o to cmd and its subcommands.
func (r *apiFlags) bind(cmd *cobra.Command, getenv func(string) string) {
	r.user = getenv("USER")
	r.apiKey = getenv("FERRY_API_KEY")
	def := getenv("FERRY_SERVER")
	if def == "" {
		def = defaultServer
	}
	cmd.PersistentFlags().StringVar(&r.server, "server", def, "URL of the server whose management API to use ($FERRY_SERVER)")
	cmd.PersistentFlags().StringVarP(&r.output, "output", "o", "table", "output format: table or json")
}

// client checks -o and returns a client of --server.
func (r *apiFlags) client() (*mgmtclient.Client, error) {
	if r.output != "table" && r.output != "json" {
		return nil, fmt.Errorf("-o %q: want table or json", r.output)
	}
	c, err := mgmtclient.New(r.server, bearerClient(r.apiKey))
	if err != nil {
		return nil, fmt.Errorf("--server: %w", err)
	}
	if r.user != "" {
		c.Actor = "cli:" + r.user
	}
	return c, nil
}

// show prints v as indented JSON with -o json, else as table draws it.
func (r *apiFlags) show(w io.Writer, v any, table func(tw *tabwriter.Writer)) error {
	if r.output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// command is a subcommand whose run gets a client and the command.
func (r *apiFlags) command(use, short string, args cobra.PositionalArgs, run func(cmd *cobra.Command, c *mgmtclient.Client, args []string) error) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: args, RunE: func(cmd *cobra.Command, a []string) error {
		c, err := r.client()
		if err != nil {
			return err
		}
		err = run(cmd, c, a)
		var ue *url.Error
		if errors.As(err, &ue) && mgmtclient.StatusOf(err) == 0 {
			return fmt.Errorf("%w (is a ferry server running at %s? set --server or $FERRY_SERVER)", err, r.server)
		}
		return err
	}}
}

func modelsCommand(getenv func(string) string) *cobra.Command {
	r := &apiFlags{}
	cmd := &cobra.Command{Use: "models", Short: "Registered models, their versions, aliases and stages, on a running server"}
	r.bind(cmd, getenv)
	cmd.AddCommand(
		r.command("list", "List the models with their versions and aliases", cobra.NoArgs, r.listModels),
		r.command("get NAME", "Show a model, its versions and aliases", cobra.ExactArgs(1), r.getModel),
		r.createModelCommand(), r.pushCommand(), r.aliasCommand(), r.stageCommand(),
	)
	return cmd
}

// showResult prints what a call returned (with -o json, or as table draws it),
// unless the call failed.
func showResult[T any](r *apiFlags, cmd *cobra.Command, v T, err error, table func(*tabwriter.Writer, T)) error {
	if err != nil {
		return err
	}
	return r.show(cmd.OutOrStdout(), v, func(tw *tabwriter.Writer) { table(tw, v) })
}

func (r *apiFlags) listModels(cmd *cobra.Command, c *mgmtclient.Client, _ []string) error {
	ms, err := c.Models(cmd.Context())
	return showResult(r, cmd, ms, err, modelTable)
}

// rows writes a header and one tab-separated row per item.
func rows[T any](tw *tabwriter.Writer, header string, items []T, row func(T) []any) {
	fmt.Fprintln(tw, header)
	for _, it := range items {
		cells := row(it)
		for i, c := range cells {
			sep := "\t"
			if i == len(cells)-1 {
				sep = "\n"
			}
			fmt.Fprint(tw, c, sep)
		}
	}
}

func modelTable(tw *tabwriter.Writer, ms []mgmtapi.Model) {
	rows(tw, "NAME\tVERSIONS\tLATEST\tALIASES\tDESCRIPTION", ms, func(m mgmtapi.Model) []any {
		latest := "-"
		if n := len(m.Versions); n > 0 {
			latest = strconv.FormatInt(m.Versions[n-1].Version, 10)
		}
		return []any{m.Name, len(m.Versions), latest, aliasList(m.Aliases), m.Description}
	})
}

// aliasList is "champion=1,challenger=2", sorted, or "-".
func aliasList(as map[string]int64) string {
	if len(as) == 0 {
		return "-"
	}
	var parts []string
	for a, v := range as {
		parts = append(parts, fmt.Sprintf("%s=%d", a, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (r *apiFlags) getModel(cmd *cobra.Command, c *mgmtclient.Client, args []string) error {
	m, err := c.Model(cmd.Context(), args[0])
	if err != nil {
		return err
	}
	return r.show(cmd.OutOrStdout(), m, func(tw *tabwriter.Writer) {
		fmt.Fprintf(tw, "Model:\t%s\nDescription:\t%s\nTags:\t%s\nAliases:\t%s\n\n", m.Name, m.Description, kvList(m.Tags), aliasList(m.Aliases))
		versionTable(tw, m.Versions)
	})
}

func versionTable(tw *tabwriter.Writer, vs []registry.ModelVersion) {
	rows(tw, "VERSION\tSTAGE\tDIGEST\tCREATED\tBY\tRUN", vs, func(v registry.ModelVersion) []any {
		return []any{v.Version, v.Stage, short(v.Digest, 12), v.Created.Format("2006-01-02 15:04:05"), v.CreatedBy, v.Lineage.RunID}
	})
}

func short(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func kvList(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// keyValues parses repeated k=v flags, naming the flag of a malformed one.
func keyValues(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--%s %q: want KEY=VALUE", flag, kv)
		}
		out[k] = v
	}
	return out, nil
}

func (r *apiFlags) createModelCommand() *cobra.Command {
	var desc string
	var tags []string
	cmd := r.command("create NAME", "Register a model", cobra.ExactArgs(1), func(cmd *cobra.Command, c *mgmtclient.Client, args []string) error {
		t, err := keyValues("tag", tags)
		if err != nil {
			return err
		}
		m, err := c.CreateModel(cmd.Context(), mgmtapi.NewModel{Name: args[0], Description: desc, Tags: t})
		if err != nil {
			return err
		}
		return r.show(cmd.OutOrStdout(), m, func(tw *tabwriter.Writer) { fmt.Fprintf(tw, "created model %s\n", m.Name) })
	})
	cmd.Flags().StringVar(&desc, "description", "", "what the model is")
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "a tag KEY=VALUE (repeatable)")
	return cmd
}

// pushFlags are push's metadata flags.
type pushFlags struct {
	desc, runID, datasetURI, datasetHash, backend, alias string
	tags, metrics, params                                []string
	parent                                               int64
}

func (f *pushFlags) meta() (mgmtapi.VersionMeta, error) {
	m := mgmtapi.VersionMeta{Description: f.desc, Backend: f.backend,
		Lineage: registry.Lineage{RunID: f.runID, DatasetURI: f.datasetURI, DatasetHash: f.datasetHash, ParentVersion: f.parent}}
	var err error
	if m.Tags, err = keyValues("tag", f.tags); err != nil {
		return m, err
	}
	if m.Params, err = keyValues("param", f.params); err != nil {
		return m, err
	}
	ms, err := keyValues("metric", f.metrics)
	for k, v := range ms {
		x, perr := strconv.ParseFloat(v, 64)
		if perr != nil {
			return m, fmt.Errorf("--metric %s=%s: the value is not a number", k, v)
		}
		if m.Metrics == nil {
			m.Metrics = map[string]float64{}
		}
		m.Metrics[k] = x
	}
	return m, err
}

func (r *apiFlags) pushCommand() *cobra.Command {
	f := &pushFlags{}
	cmd := r.command("push NAME DIR", "Upload a version folder's files as a new version of NAME", cobra.ExactArgs(2), func(cmd *cobra.Command, c *mgmtclient.Client, args []string) error {
		return r.push(cmd, c, f, args[0], args[1])
	})
	fl := cmd.Flags()
	fl.StringVar(&f.desc, "description", "", "what changed in this version (kept as the tag \"description\")")
	fl.StringArrayVar(&f.tags, "tag", nil, "a tag KEY=VALUE (repeatable)")
	fl.StringArrayVar(&f.metrics, "metric", nil, "a training metric KEY=NUMBER (repeatable)")
	fl.StringArrayVar(&f.params, "param", nil, "a training parameter KEY=VALUE (repeatable)")
	fl.StringVar(&f.runID, "run-id", "", "the training run that produced it")
	fl.StringVar(&f.datasetURI, "dataset-uri", "", "the training data's location")
	fl.StringVar(&f.datasetHash, "dataset-hash", "", "the training data's hash")
	fl.Int64Var(&f.parent, "parent-version", 0, "the version this one was derived from")
	fl.StringVar(&f.backend, "backend", "", "the engine that serves it (default: found from the files)")
	fl.StringVar(&f.alias, "alias", "", "then move this alias to the new version")
	return cmd
}

func (r *apiFlags) push(cmd *cobra.Command, c *mgmtclient.Client, f *pushFlags, model, dir string) error {
	meta, err := f.meta()
	if err != nil {
		return err
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("push %s: %q is not a folder", model, dir)
	}
	created, err := ensureModel(cmd, c, model)
	if err != nil {
		return err
	}
	v, err := pushDir(cmd.Context(), c, model, meta, dir)
	if err != nil {
		return err
	}
	if f.alias != "" {
		if _, err := c.SetAlias(cmd.Context(), model, f.alias, v.Version); err != nil {
			return fmt.Errorf("pushed %s version %d, but moving alias %s failed: %w", model, v.Version, f.alias, err)
		}
	}
	return r.show(cmd.OutOrStdout(), v, func(tw *tabwriter.Writer) {
		if created {
			fmt.Fprintf(tw, "created model %s\n", model)
		}
		fmt.Fprintf(tw, "pushed %s version %d (sha256 %s)\n", v.Model, v.Version, short(v.Digest, 12))
		if f.alias != "" {
			fmt.Fprintf(tw, "alias %s -> %d\n", f.alias, v.Version)
		}
	})
}

// ensureModel registers model if the server does not know it, as MLflow's
// register_model does, so a first push needs no `models create`.
func ensureModel(cmd *cobra.Command, c *mgmtclient.Client, model string) (bool, error) {
	_, err := c.Model(cmd.Context(), model)
	if mgmtclient.StatusOf(err) != http.StatusNotFound {
		return false, err
	}
	_, err = c.CreateModel(cmd.Context(), mgmtapi.NewModel{Name: model})
	return err == nil, err
}

// pushDir streams a tar of dir to the server. A failure to read dir is reported as
// such, not as the broken upload it causes.
func pushDir(ctx context.Context, c *mgmtclient.Client, model string, meta mgmtapi.VersionMeta, dir string) (registry.ModelVersion, error) {
	pr, pw := io.Pipe()
	tarErr := make(chan error, 1)
	go func() {
		err := tarDir(ctx, dir, pw)
		pw.CloseWithError(err)
		tarErr <- err
	}()
	v, err := c.PushVersion(ctx, model, meta, pr)
	pr.Close() // stops the tar writer if the server stopped reading
	if terr := <-tarErr; terr != nil && !errors.Is(terr, io.ErrClosedPipe) {
		return v, fmt.Errorf("push %s: %w", model, terr)
	}
	return v, err
}

// tarDir writes dir's files (and folders) to w, with names relative to dir. Links and
// special files are refused, as the server refuses them.
func tarDir(ctx context.Context, dir string, w io.Writer) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() && !info.IsDir() {
			return fmt.Errorf("%s: only plain files and folders can be pushed (%s)", p, info.Mode().Type())
		}
		h, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil || info.IsDir() {
			return err
		}
		return copyFile(tw, p)
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

func copyFile(w io.Writer, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

func (r *apiFlags) aliasCommand() *cobra.Command {
	var del bool
	cmd := r.command("alias NAME ALIAS [VERSION]", "Point an alias at a version (or remove it with --delete)", cobra.RangeArgs(2, 3), func(cmd *cobra.Command, c *mgmtclient.Client, args []string) error {
		model, alias := args[0], args[1]
		if del {
			if len(args) == 3 {
				return errors.New("alias --delete takes NAME ALIAS, no VERSION")
			}
			if err := c.DeleteAlias(cmd.Context(), model, alias); err != nil {
				return err
			}
			gone := map[string]any{"model": model, "alias": alias, "deleted": true}
			return r.show(cmd.OutOrStdout(), gone, func(tw *tabwriter.Writer) { fmt.Fprintf(tw, "removed alias %s of %s\n", alias, model) })
		}
		if len(args) != 3 {
			return errors.New("alias needs NAME ALIAS VERSION (or --delete)")
		}
		v, err := strconv.ParseInt(args[2], 10, 64)
		if err != nil || v < 1 {
			return fmt.Errorf("VERSION %q: want a version number", args[2])
		}
		a, err := c.SetAlias(cmd.Context(), model, alias, v)
		if err != nil {
			return err
		}
		return r.show(cmd.OutOrStdout(), a, func(tw *tabwriter.Writer) {
			fmt.Fprintf(tw, "%s alias %s -> version %d\n", a.Model, a.Alias, a.Version)
		})
	})
	cmd.Flags().BoolVar(&del, "delete", false, "remove the alias")
	return cmd
}

func (r *apiFlags) stageCommand() *cobra.Command {
	var req mgmtapi.StageRequest
	cmd := r.command("stage NAME VERSION STAGE", "Move a version to a stage (None, Staging, Production, Archived)", cobra.ExactArgs(3), func(cmd *cobra.Command, c *mgmtclient.Client, args []string) error {
		v, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil || v < 1 {
			return fmt.Errorf("VERSION %q: want a version number", args[1])
		}
		req.Stage = registry.Stage(args[2])
		mv, err := c.TransitionStage(cmd.Context(), args[0], v, req)
		if err != nil {
			return err
		}
		return r.show(cmd.OutOrStdout(), mv, func(tw *tabwriter.Writer) {
			fmt.Fprintf(tw, "%s version %d is now %s\n", mv.Model, mv.Version, mv.Stage)
		})
	})
	cmd.Flags().BoolVar(&req.ArchiveExisting, "archive-existing", false, "archive the other versions in that stage")
	cmd.Flags().StringVar(&req.Reason, "reason", "", "why (kept in the stage history)")
	return cmd
}
