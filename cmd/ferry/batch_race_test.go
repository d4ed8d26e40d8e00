//go:build race

package main

// batchRace: the race detector slows a batch job several times over; its tests feed
// fewer rows.
const batchRace = true
