// Package stream is the streaming lane's shared part: a Processor that scores a batch of
// consumed messages through core (rows gathered into the model's batches, V2 requests
// one by one) and says, per message, what to produce or why it goes to the dead-letter
// topic. The brokers' consumers (stream/kafka, stream/redisstream) own fetching,
// ordering, acknowledging and backpressure; they never reach past core.
package stream
