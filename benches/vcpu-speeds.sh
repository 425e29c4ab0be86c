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
#   neighbours: ROUNDS times, on CPU 0 and then CPU 1 with the other idle,
#     BenchmarkHost's three loops and a one-copy merge: a chain of dependent
#     multiplies runs at the core's clock, a wide loop slows when something
#     outside this machine shares the core's integer units, and a pointer
#     chase through 512 KiB when it shares its level-2 cache; the
#     correlations over all rounds (both vCPUs' together) say which of them
#     the merge's speed follows.
#
#   benches/vcpu-speeds.sh              # 8 rounds each
#   ROUNDS=12 benches/vcpu-speeds.sh
#   PARTS=neighbours benches/vcpu-speeds.sh
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-8}
parts=" ${PARTS:-pinned barrier neighbours} "
for p in $parts; do
	case $p in pinned | barrier | neighbours) ;; *) echo "vcpu-speeds.sh: unknown part $p (pinned, barrier, neighbours)" >&2; exit 2 ;; esac
done
want() { [[ $parts == *" $1 "* ]]; }
bin=$(mktemp -d)/benches.test
go test -c -o "$bin" ./benches/
cd benches
quiet() { while awk '{ exit !($1 >= 0.5) }' /proc/loadavg; do sleep 10; done; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
# merge BENCH [taskset args...]: the benchmark's elem/s.
# metric UNIT: the value before UNIT on each benchmark line of the input.
metric() { awk -v u="$1" '/^Benchmark/ { for (i = 1; i < NF; i++) if ($(i+1) == u) print $i }'; }
merge() {
	local bench=$1
	shift
	"$@" "$bin" -test.run XXX -test.count 1 -test.benchtime 10x -test.bench "$bench" | metric elem/s
}
# host LOOP CPU: BenchmarkHost/LOOP's Miter/s, pinned to CPU.
host() {
	taskset -c "$2" "$bin" -test.run XXX -test.count 1 -test.benchtime 400x -test.bench "Host/$1\$" | metric Miter/s
}
solo='Merge/copies=1/procs=1'

if want pinned; then
quiet
echo "# pinned, load before: $(load)"
for _ in $(seq "$rounds"); do
	{ merge "$solo" taskset -c 0 | sed 's/^/0 /' & merge "$solo" taskset -c 1 | sed 's/^/1 /'; wait; } |
		sort | awk '{ v[$1] = $2 } END { printf "cpu1/cpu0 %.3f\n", v[1] / v[0] }'
done
echo "# load after: $(load)"

fi

if want barrier; then
quiet
echo "# barrier, load before: $(load)"
for _ in $(seq "$rounds"); do
	two=$(merge 'Merge/copies=2/procs=2')
	pair=$({ merge "$solo" & merge "$solo"; wait; } | awk '{ s += $1 } END { print s }')
	one=$(merge "$solo")
	awk -v t="$two" -v p="$pair" -v o="$one" 'BEGIN { printf "one-run/two-processes %.3f  two-processes/one %.3f\n", t / p, p / o }'
done
echo "# load after: $(load)"

fi

if want neighbours; then
quiet
echo "# neighbours, load before: $(load)"
for _ in $(seq "$rounds"); do
	for cpu in 0 1; do
		echo "$cpu $(host chain "$cpu") $(host wide "$cpu") $(host l2 "$cpu") $(merge "$solo" taskset -c "$cpu")"
	done
done | awk '
function corr(x, y,   i, mx, my, sxy, sxx, syy) {
	for (i = 1; i <= n; i++) { mx += x[i] / n; my += y[i] / n }
	for (i = 1; i <= n; i++) { sxy += (x[i] - mx) * (y[i] - my); sxx += (x[i] - mx)^2; syy += (y[i] - my)^2 }
	return sxy / sqrt(sxx * syy)
}
NF != 5 { print "vcpu-speeds.sh: a round without its five figures: " $0; bad = 1; next }
{
	printf "cpu%s chain %.0f wide %.0f l2 %.0f Miter/s, merge %.2fM elem/s\n", $1, $2, $3, $4, $5 / 1e6
	n++; c[n] = $2; w[n] = $3; l[n] = $4; m[n] = $5
} END {
	if (bad) exit 1
	printf "correlation of the merge with the chain %.2f, the wide loop %.2f, l2 %.2f\n", corr(m, c), corr(m, w), corr(m, l)
}'
echo "# load after: $(load)"
fi
