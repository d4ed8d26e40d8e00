// Package inferlogtest writes inference log directories for the tests of what reads
// them (the management route, ferry logs), through a real inferlog.Logger.
package inferlogtest
