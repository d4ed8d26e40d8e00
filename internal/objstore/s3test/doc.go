// Package s3test runs an S3-compatible server in process for tests (gofakes3's in-memory
// backend behind a real HTTP listener on 127.0.0.1), with faults a test can switch on:
// object bodies corrupted or cut short in transit, and a required access key.
package s3test
