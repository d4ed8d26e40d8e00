//go:build !race

package main

const batchRace = false
