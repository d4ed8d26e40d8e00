// Package goldentest compares a test's output with a golden file, and rewrites the file
// when the test runs with its package's -update flag. Only tests import it.
package goldentest
