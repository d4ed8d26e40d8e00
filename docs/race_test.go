//go:build race

package docs

// raceEnabled: the test binary was built with -race, so the ferry binary built by
// TestServeFlagsDocumented is too, and shares the packages `go test -race ./...` compiled.
const raceEnabled = true
