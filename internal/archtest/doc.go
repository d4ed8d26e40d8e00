// Package archtest holds no code: its test enforces the import rules of DESIGN.md, so the
// one-way data flow (transport -> core -> scheduler -> backend) cannot erode silently.
package archtest
