//go:build race

package drift

// raceEnabled: the race detector slows the million-row test tenfold; it feeds fewer.
const raceEnabled = true
