// Package background lets the work that follows serving (the inference log's encoding,
// drift's ingest, span export) give way to it.
//
// Such a goroutine wakes on its ticker, and the runtime then runs it next on its
// processor, ahead of the requests already waiting there. A batch of encodings run
// that way holds a core for a quarter of a millisecond while a dynamic batch's answers
// wait behind it, and every request it delays reaches the next batch later. Measured
// on two cores with mlp (one instance, 2 ms queue delay) over gRPC, the monitored
// server kept, of the unmonitored one's throughput, 0.874-0.905 at 64 clients (five
// runs) without yielding and 0.896-0.924 (seven) with it; at 16 clients 0.871-0.884
// and 0.917-0.921. When the cores are idle (a batcher waiting out its queue delay) the
// yield costs nothing and the work runs at once; when they are saturated it can only
// reorder work (identity_fp32 over gRPC, no batching, 64 clients: 0.883-0.924 in seven
// runs without, 0.889-0.902 in two with; yielding also in the file writer and drift's
// ingest made that 0.876-0.907 and did not help mlp, so those do not).
package background
