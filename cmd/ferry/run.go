package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// run builds the command tree; everything that reads flags or the environment starts here.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	root := &cobra.Command{
		Use:           "ferry",
		Short:         "Ferry serves trained models over the Open Inference Protocol (KServe/Triton V2)",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version, // --version, as tritonserver and most servers take it
	}
	root.SetVersionTemplate("ferry {{.Version}}\n") // the same line as `ferry version`
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(benchCommand(getenv, stdout, stderr))
	root.AddCommand(modelsCommand(getenv))
	root.AddCommand(rolloutCommand(getenv))
	root.AddCommand(applyCommand(getenv))
	root.AddCommand(keysCommand(getenv), tenantsCommand(getenv)) // keys_cmd.go
	root.AddCommand(jobsCommand(getenv))                         // jobs_cmd.go
	root.AddCommand(logsCommand(getenv))                         // logs_cmd.go
	root.AddCommand(batchCommand(getenv, stderr))                // batch_cmd.go
	root.AddCommand(serveCommand(getenv, stderr), &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), "ferry", version) },
	})
	return root.ExecuteContext(ctx)
}
