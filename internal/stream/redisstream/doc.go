// Package redisstream is the streaming lane over Redis Streams: a Consumer reads an input
// stream in a consumer group (XREADGROUP), scores the entries through a stream.Processor,
// writes each answer to an output stream or the dead-letter stream (XADD), and only then
// acknowledges the entries (XACK), so a crash loses nothing: what was read and not
// acknowledged stays in the group's pending entries list, where the consumer itself finds
// it again when it restarts under the same name, and any consumer of the group reclaims it
// (XAUTOCLAIM) once it has been idle for Config.ClaimIdle.
//
// Delivery is at least once: a crash between the output's XADD and the XACK writes that
// output twice. One consumer writes entries in the order it read them; entries reclaimed
// from another consumer come when they are reclaimed. At most Config.MaxInFlight entries
// are read and not acknowledged at any time, whatever the stream's length.
package redisstream
