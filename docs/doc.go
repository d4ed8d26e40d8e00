// Package docs holds Ferry's reference pages (Markdown, beside this file) and the tests that keep
// them true: every relative link in README.md and docs/*.md names a file that exists and a heading
// that exists (GitHub's anchor rules), every repository path they quote in code still exists, and
// docs/serve.md lists exactly the flags `ferry serve` registers.
//
// Where things go: a page per area, linked from README.md, which stays a newcomer's front door
// (the two commands, "Try it", the concepts). Reference tables and measurements belong here, next
// to the page on the same subject; a new page needs a link from README.md's list.
//
// The package has no code of its own; it exists so that `go test ./...` runs these checks.
package docs
