//go:build !race

package docs

// raceEnabled: see race_test.go.
const raceEnabled = false
