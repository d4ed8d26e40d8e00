// Package filestate tells one state of a set of files from another without reading
// them: what a repository poll compares to decide whether a folder changed.
package filestate
