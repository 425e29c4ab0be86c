#!/usr/bin/env bash
# vcpu-speeds.sh measures what a run of two merge copies on two cores loses to
# the cores' unequal speeds, on a quiet machine (it waits for the 1-minute load
# average to fall below 0.5, and prints the load before and after):
#
#   pinned: one merge copy per process, pinned to CPU 0 and to CPU 1 (taskset)
#     and run at once, ROUNDS times: CPU 1's elements a second over CPU 0's;
#   barrier: ROUNDS times, Merge/copies=2/procs=2 (one Run of two copies, which
#     ends with the slower copy) over two copies=1/procs=1 processes at once
#     (each at its own core's speed), and those two processes over one alone.
#
#   benches/vcpu-speeds.sh              # 8 rounds each
#   ROUNDS=12 benches/vcpu-speeds.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-8}
bin=$(mktemp -d)/benches.test
go test -c -o "$bin" ./benches/
cd benches
quiet() { while awk '{ exit !($1 >= 0.5) }' /proc/loadavg; do sleep 10; done; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
# merge BENCH [taskset args...]: the benchmark's elem/s.
merge() {
	local bench=$1
	shift
	"$@" "$bin" -test.run XXX -test.count 1 -test.benchtime 10x -test.bench "$bench" |
		awk '/elem\/s/ { for (i = 1; i <= NF; i++) if ($(i+1) == "elem/s") print $i }'
}
solo='Merge/copies=1/procs=1'

quiet
echo "# pinned, load before: $(load)"
for _ in $(seq "$rounds"); do
	{ merge "$solo" taskset -c 0 | sed 's/^/0 /' & merge "$solo" taskset -c 1 | sed 's/^/1 /'; wait; } |
		sort | awk '{ v[$1] = $2 } END { printf "cpu1/cpu0 %.3f\n", v[1] / v[0] }'
done
echo "# load after: $(load)"

quiet
echo "# barrier, load before: $(load)"
for _ in $(seq "$rounds"); do
	two=$(merge 'Merge/copies=2/procs=2')
	pair=$({ merge "$solo" & merge "$solo"; wait; } | awk '{ s += $1 } END { print s }')
	one=$(merge "$solo")
	awk -v t="$two" -v p="$pair" -v o="$one" 'BEGIN { printf "one-run/two-processes %.3f  two-processes/one %.3f\n", t / p, p / o }'
done
echo "# load after: $(load)"
