// Package kgolog hands franz-go's (Kafka client) warnings and errors to slog, for every
// package that opens a Kafka client: the inference log's sink and the streaming lane.
package kgolog
