package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ferryml/ferry/internal/registry"
)

// keys_cmd.go: `ferry keys create|list|revoke` and `ferry tenants create|list`, offline
// on the registry of --data-dir (or --registry-url), as `ferry serve` opens it. A
// running server sees a new key at once and a revocation within --auth-key-ttl.

// storeFlags open the registry a server uses.
type storeFlags struct{ dataDir, registryURL string }

func (f *storeFlags) bind(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.dataDir, "data-dir", "", "the server's --data-dir, whose registry.db holds the keys")
	cmd.PersistentFlags().StringVar(&f.registryURL, "registry-url", "", "the server's PostgreSQL registry (postgres://...) instead")
}

func (f *storeFlags) open(ctx context.Context) (registry.Store, error) {
	switch {
	case f.registryURL != "":
		return registry.Open(ctx, f.registryURL)
	case f.dataDir != "":
		return registry.OpenDir(ctx, f.dataDir)
	}
	return nil, fmt.Errorf("--data-dir or --registry-url is required: the keys live in the server's registry")
}

// withStore runs fn on the opened registry, as actor cli:$USER.
func (f *storeFlags) withStore(cmd *cobra.Command, user string, fn func(ctx context.Context, st registry.Store) error) error {
	ctx := registry.WithActor(cmd.Context(), "cli:"+user, cmd.CommandPath())
	st, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(ctx, st)
}

func keysCommand(getenv func(string) string) *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{Use: "keys", Short: "Create, list and revoke API keys in a server's registry"}
	sf.bind(cmd)
	var tenant, role, models string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an API key; the key is printed alone on the last line, and only once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return sf.withStore(cmd, getenv("USER"), func(ctx context.Context, st registry.Store) error {
				k, full, err := st.CreateKey(ctx, registry.Key{Tenant: tenant, Role: role, Models: splitList(models)})
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "key %s for tenant %s, role %s, models %s (store it now: it is not shown again)\n", k.ID, k.Tenant, k.Role, orAll(k.Models))
				fmt.Fprintln(w, full)
				return nil
			})
		},
	}
	create.Flags().StringVar(&tenant, "tenant", "", "tenant the key belongs to (created if new)")
	create.Flags().StringVar(&role, "role", "infer", "infer, manage or admin")
	create.Flags().StringVar(&models, "models", "", "comma-separated glob patterns of the models the key may use (default: all)")
	_ = create.MarkFlagRequired("tenant")
	var output string
	list := &cobra.Command{
		Use:   "list",
		Short: "List the keys (ids, never secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return sf.withStore(cmd, getenv("USER"), func(ctx context.Context, st registry.Store) error {
				keys, err := st.ListKeys(ctx, tenant)
				if err != nil {
					return err
				}
				return printList(cmd.OutOrStdout(), output, keys, "ID\tTENANT\tROLE\tMODELS\tCREATED\tREVOKED", func(k registry.Key) string {
					return strings.Join([]string{k.ID, k.Tenant, k.Role, orAll(k.Models), stamp(k.Created), stamp(k.Revoked)}, "\t")
				})
			})
		},
	}
	list.Flags().StringVar(&tenant, "tenant", "", "only this tenant's keys")
	list.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a key (by its id, or the key itself); servers refuse it within --auth-key-ttl",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if kid, _, ok := registry.ParseKey(id); ok {
				id = kid
			}
			return sf.withStore(cmd, getenv("USER"), func(ctx context.Context, st registry.Store) error {
				if err := st.RevokeKey(ctx, id); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "revoked", id)
				return nil
			})
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func tenantsCommand(getenv func(string) string) *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{Use: "tenants", Short: "Create and list tenants in a server's registry"}
	sf.bind(cmd)
	var limits, output string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a tenant",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return sf.withStore(cmd, getenv("USER"), func(ctx context.Context, st registry.Store) error {
				t, err := st.CreateTenant(ctx, registry.Tenant{Name: args[0], Limits: json.RawMessage(limits)})
				if err == nil {
					fmt.Fprintln(cmd.OutOrStdout(), "created tenant", t.Name)
				}
				return err
			})
		},
	}
	create.Flags().StringVar(&limits, "limits", "{}", "the tenant's limits as JSON (read by the admission layer)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the tenants",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return sf.withStore(cmd, getenv("USER"), func(ctx context.Context, st registry.Store) error {
				ts, err := st.Tenants(ctx)
				if err != nil {
					return err
				}
				return printList(cmd.OutOrStdout(), output, ts, "NAME\tLIMITS\tCREATED", func(t registry.Tenant) string {
					return t.Name + "\t" + string(t.Limits) + "\t" + stamp(t.Created)
				})
			})
		},
	}
	list.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	cmd.AddCommand(create, list)
	return cmd
}

// printList prints rows as JSON or as a table under header.
func printList[T any](w io.Writer, output string, rows []T, header string, row func(T) string) error {
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	case "table":
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, header)
		for _, r := range rows {
			fmt.Fprintln(tw, row(r))
		}
		return tw.Flush()
	}
	return fmt.Errorf("-o %q: want table or json", output)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func orAll(models []string) string {
	if len(models) == 0 {
		return "*"
	}
	return strings.Join(models, ",")
}
