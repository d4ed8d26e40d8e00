#!/bin/sh
# bench-scheduling.sh measures, in one run, what dynamic batching buys on the mlp example
# (issue 3's benchmark): the server and `ferry bench` on this machine, then the engine
# alone. Each row is one `ferry bench`; ratios are computed here from the CSV reports.
#
#   tools/bench-scheduling.sh            # 8 s per row
#   DURATION=3s tools/bench-scheduling.sh
#   MODELS=/tmp/variant tools/bench-scheduling.sh   # a copy of examples/models with other configs
#   STABILITY=10 DURATION=3s tools/bench-scheduling.sh  # server rows: 3 s windows until 3 agree within 10%
set -eu
cd "$(dirname "$0")/.."
DURATION=${DURATION:-8s}
MODELS=${MODELS:-examples/models}
STABILITY=${STABILITY:-0}
make -s build models >/dev/null
out=$(mktemp -d)
./bin/ferry serve --model-repository "$MODELS" --grpc-port 8001 --http-port 8000 >"$out/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$out"' EXIT INT TERM
i=0
until ./bin/ferry bench -m mlp --grpc localhost:8001 --duration 100ms >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 100 ] || { cat "$out/server.log"; exit 1; }
	sleep 0.1
done

# run NAME ARGS...: one ferry bench into $out/NAME.csv.
run() {
	name=$1
	shift
	./bin/ferry bench "$@" --duration "$DURATION" --csv "$out/$name.csv" >/dev/null 2>&1
}
# serve NAME ARGS...: one ferry bench against the server.
serve() {
	name=$1
	shift
	run "$name" "$@" --stability-percentage "$STABILITY"
}
# Columns of a ferry bench CSV row, counted from its end (the protocol column may hold
# commas): batch_size, items_per_second, p50_us, p99_us, server_avg_batch and the
# server's and client's CPU µs per request (then windows and unstable).
BATCH=17 ITEMS=10 P50=9 P99=6 AVGBATCH=4 SRVCPU=3 CLICPU=2
# field NAME COLUMN: a column of a report's last row.
field() {
	tail -n 1 "$out/$1.csv" | awk -F, -v c="$2" '{ print $(NF - c) }'
}
# best NAME...: the engine row with the most items/s over the reports, as "items/s p50_us
# p99_us batch".
best() {
	for n in "$@"; do tail -n +2 "$out/$n.csv"; done | awk -F, -v i=$ITEMS -v p50=$P50 -v p99=$P99 -v b=$BATCH \
		'BEGIN { m = 0 } $(NF-i) > m { m = $(NF-i); r = m " " $(NF-p50) " " $(NF-p99) " " $(NF-b) } END { print r }'
}

serve a_batched -m mlp --grpc localhost:8001 --concurrency 64
serve a_nobatch -m mlp_nobatch --grpc localhost:8001 --concurrency 64
serve a_batched_stream -m mlp --grpc localhost:8001 --concurrency 64 --streaming
serve a_nobatch_stream -m mlp_nobatch --grpc localhost:8001 --concurrency 64 --streaming
serve b -m mlp --grpc localhost:8001 --concurrency 32 -b 8
serve b_stream -m mlp --grpc localhost:8001 --concurrency 32 -b 8 --streaming
kill $server
wait $server 2>/dev/null || true
# The engine twice, its best run the limit: a disturbed engine run would flatter the server.
run engine --engine "$MODELS/mlp"
run engine_2x1 --engine "$MODELS/mlp" --engine-instances 2 --onnx-intra-op-threads 1
run engine_again --engine "$MODELS/mlp"
run engine_2x1_again --engine "$MODELS/mlp" --engine-instances 2 --onnx-intra-op-threads 1

set -- $(best engine engine_again)
engine=$1 engine_p50=$2 engine_p99=$3 engine_batch=$4
set -- $(best engine_2x1 engine_2x1_again)
engine2=$1 engine2_batch=$4

row() { # name label ratio
	awk -v l="$2" -v i="$(field "$1" $ITEMS)" -v p50="$(field "$1" $P50)" -v p99="$(field "$1" $P99)" -v b="$(field "$1" $AVGBATCH)" \
		-v s="$(field "$1" $SRVCPU)" -v c="$(field "$1" $CLICPU)" -v r="$3" \
		'BEGIN { printf "| %s | %.0f | %.1f | %.1f | %.1f | %.0f | %.0f | %s |\n", l, i, p50 / 1000, p99 / 1000, b, s, c, r }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo "| what | items/s | p50 ms | p99 ms | server avg batch | server CPU µs/req | bench CPU µs/req | ratio |"
echo "|---|---|---|---|---|---|---|---|"
row a_batched "(a) mlp, 64 clients x 1 item, unary gRPC, batching on" "$(ratio "$(field a_batched $ITEMS)" "$(field a_nobatch $ITEMS)")x the unbatched"
row a_nobatch "(a) mlp_nobatch, 64 clients x 1 item, unary gRPC" "1"
row a_batched_stream "(a) mlp, 64 clients x 1 item, gRPC streaming, batching on" "$(ratio "$(field a_batched_stream $ITEMS)" "$(field a_nobatch_stream $ITEMS)")x the unbatched"
row a_nobatch_stream "(a) mlp_nobatch, 64 clients x 1 item, gRPC streaming" "1"
row b "(b) mlp, 32 clients x 8 items, unary gRPC" "$(ratio "$(field b $ITEMS)" "$engine") of the engine"
row b_stream "(b) mlp, 32 clients x 8 items, gRPC streaming" "$(ratio "$(field b_stream $ITEMS)" "$engine") of the engine"
awk -v b="$engine_batch" -v i="$engine" -v p50="$engine_p50" -v p99="$engine_p99" \
	'BEGIN { printf "| engine, 1 session x 2 threads, best batch (%s) of two runs, no load generator | %.0f | %.1f | %.1f | | | | 1 |\n", b, i, p50 / 1000, p99 / 1000 }'
printf '| engine, 2 sessions x 1 thread, best batch (%s) of two runs, for reference | %.0f | | | | | | %s |\n' "$engine2_batch" "$engine2" "$(ratio "$engine2" "$engine")"
