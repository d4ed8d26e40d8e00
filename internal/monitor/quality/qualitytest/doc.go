// Package qualitytest is an in-memory inference log for tests of what reads ground
// truth through quality.Predictions.
package qualitytest
