// Package kafka is the streaming lane on Kafka: a consumer group member that reads an
// input topic, scores each message through a stream.Processor (so through core, like
// every lane) and writes the result to an output topic, or the message to a dead-letter
// topic with the error in a header.
//
// Delivery is at least once: a partition's offset is committed only past messages whose
// output (or dead letter) the brokers have acknowledged. Results are produced in each
// partition's input order, so per-key order holds; partitions run concurrently. At most
// Config.MaxInFlight messages (and about Config.MaxInFlightBytes of them) are held
// between fetch and commit: at either bound, and
// while the model answers that it cannot take work, fetching pauses.
package kafka
