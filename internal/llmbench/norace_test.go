//go:build !race

package llmbench

// slack is how far past a scripted delay a measured median may fall (scheduling noise
// on a loaded machine).
const slack = 60.0
