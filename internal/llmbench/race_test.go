//go:build race

package llmbench

// slack is how far past a scripted delay a measured median may fall: the race
// detector slows the client and the server several times over.
const slack = 150.0
