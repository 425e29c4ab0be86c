#!/usr/bin/env bash
# figures.sh runs the benchmarks behind benches/README.md, section by
# section, each with -count (COUNT, default 6: the fewest samples benchstat
# gives a confidence interval for), and summarises every section with
# benchstat, writing the load average before and after each one. Run it
# alone: each section first waits for the 1-minute load average to fall
# below QUIET (default 0.5). The raw output and the summaries go to OUT
# (default /tmp/vitflow-figures).
#
#   benches/figures.sh                  # every section but fuzz and memory
#   benches/figures.sh simulated merge  # some of them
#
# Sections: simulated (the DeiT-S accelerator beside the reference), merge
# (the engine), pgo (the merge and a timing-only point, built as usual and
# with cmd/run's profile for profile-guided optimisation), sweep (100-point
# sweeps: DeiT-S timing-only, mnist-tiny with 500 images a point; one point
# at a time and one per core), sizing (FIFO
# sizing of u250 for DeiT-S against simulating its candidates, one
# re-timing, one DeiT-S point with and without numerics), kernels (dense and block-sparse GEMM, element-wise; against
# OpenBLAS when libopenblas-dev is installed), forward (the DeiT-S reference
# forward; against PyTorch when /usr/bin/python3 has torch and torchvision),
# train (one trainer step on mnist-tiny), and, only when named, fuzz (every
# fuzz target for FUZZTIME, 8 minutes in all) and memory (10,000 DeiT-S
# images through the simulated accelerator, about 10 minutes).
set -euo pipefail
out=${OUT:-/tmp/vitflow-figures}
mkdir -p "$out"
out=$(CDPATH= cd -- "$out" && pwd) # from the caller's directory; sections run inside packages
cd "$(dirname "$0")/.."
count=${COUNT:-6}
failed= # the sections or fuzz targets that failed
benchstat() { go run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da "$@"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# OpenBLAS 0.3.21 does not know every processor and then falls back to slow
# generic kernels (OPENBLAS_VERBOSE=2 names the core it picked): name its
# fastest one here. An OPENBLAS_CORETYPE or OPENBLAS_L2_SIZE inherited from
# the environment is dropped (say so with BLAS_KEEP_ENV=1 to keep them): a
# machine we measured on set Haswell, whose AVX2 kernels ran at 95 GFLOP/s
# where SkylakeX's made 165, and PyTorch's products go through OpenBLAS too.
if [ -z "${BLAS_KEEP_ENV:-}" ]; then
	unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
	if grep -qw avx512f /proc/cpuinfo; then
		export OPENBLAS_CORETYPE=SKYLAKEX
	fi
fi
echo "OpenBLAS core type: ${OPENBLAS_CORETYPE:-detected by OpenBLAS}" >&2

# quiet waits, up to 10 minutes, for the 1-minute load average to fall below
# QUIET (default 0.5): a section's binary is built first, and its own build
# must not load the measurement. It says so when the machine stays busy.
quiet() {
	local waited=0
	while awk -v limit="${QUIET:-0.5}" '{ exit !($1 >= limit) }' /proc/loadavg; do
		if [ "$waited" -ge 600 ]; then
			echo "load still $(load) after 10 minutes: measuring anyway, and the figures are not a result" >&2
			return
		fi
		sleep 10
		waited=$((waited + 10))
	done
}

# section NAME CMD...: runs CMD on a quiet machine, keeping its output and
# the load around it.
section() {
	local name=$1
	shift
	quiet
	echo "== $name (load $(load))" >&2
	local rc=0
	{
		echo "# $name: $*"
		echo "# load before: $(load)"
		"$@" || rc=$?
		echo "# load after: $(load)"
	} >"$out/$name.txt" 2>&1
	# A round's command that fails before the last one leaves only its
	# output: look for that too.
	if [ "$rc" != 0 ] || grep -qE '^(FAIL|--- FAIL|panic:)' "$out/$name.txt"; then
		echo "figures.sh: $name failed (exit $rc): see $out/$name.txt" >&2
		failed="$failed $name"
	fi
	benchstat "$out/$name.txt" >"$out/$name.stat"
	rounds_range "$out/$name.txt" >>"$out/$name.stat"
	cat "$out/$name.stat"
}

# rounds_range FILE prints, for every ratio a benchmark reports (speedup,
# sim/ref, merge2x2/merge1x1 and the like), the lowest and highest round
# beside the count, which benchstat's median and interval do not show; and,
# for the forward section, each round's ratio of vitflow's wall time on all
# threads to PyTorch's better one, the two run one after the other in that round.
rounds_range() {
	awk '
	/^Benchmark/ {
		name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
		for (i = 3; i < NF; i += 2) {
			v = $i; u = $(i + 1)
			if (u == "speedup" || u == "full/timing" || u == "pgo/default" || u ~ /^sim\/ref|procs2\/procs1$|\/merge1x1$/) {
				k = name " " u
				if (!(k in n)) { order[++keys] = k; lo[k] = v; hi[k] = v }
				n[k]++; if (v < lo[k]) lo[k] = v; if (v > hi[k]) hi[k] = v
			}
			if (u != "ms/image") continue
			if (name ~ /^ForwardDeiTSmall\/(dense|k=0.7)\/threads=all$/) {
				split(name, p, "/"); ours[p[2], ++rounds_ours[p[2]]] = v
			}
			if (name ~ /^TorchForwardDeiTSmall\//) {
				split(name, p, "/"); r = rounds_ours[p[2]]
				if (!((p[2], r) in torch) || v < torch[p[2], r]) torch[p[2], r] = v
			}
		}
	}
	END {
		if (keys) print "\nratios by round: lowest-highest (rounds)"
		for (j = 1; j <= keys; j++) printf "%s %s-%s (%d)\n", order[j], lo[order[j]], hi[order[j]], n[order[j]]
		split("dense k=0.7", cases, " ")
		for (ci = 1; ci <= 2; ci++) {
			c = cases[ci]
			line = ""
			for (r = 1; r <= rounds_ours[c]; r++)
				if ((c, r) in torch) line = line sprintf(" %.3f", ours[c, r] / torch[c, r])
			if (line != "") print "forward " c ", vitflow threads=all / PyTorch best, by round:" line
		}
	}' "$1"
}

bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT

simulated() {
	go test -c -o "$bin/benches.test" ./benches/
	section simulated "$bin/benches.test" -test.run XXX -test.bench 'SimulatedDeiTSmall/(paired|build)' -test.count "$count" -test.benchtime 10x
}

merge() {
	go test -c -o "$bin/benches.test" ./benches/
	# Scaling's iteration runs every case once (about 2 s): ten of them a
	# round, so that a round's ratios pair ten runs of each case, not one.
	rounds() {
		"$bin/benches.test" -test.run XXX -test.bench 'Merge|AdderTree' -test.count "$count"
		"$bin/benches.test" -test.run XXX -test.bench 'Scaling' -test.count "$count" -test.benchtime 10x
	}
	section merge rounds
}

sweep() {
	go test -c -o "$bin/benches.test" ./benches/
	section sweep "$bin/benches.test" -test.run XXX -test.bench 'Sweep' -test.count "$count" -test.benchtime 1x
}

sizing() {
	go test -c -o "$bin/benches.test" ./benches/
	go test -c -o "$bin/topology.test" ./topology/
	rounds() {
		"$bin/benches.test" -test.run XXX -test.bench 'FIFOSizing|TimingOnlyDeiTSmall' -test.count "$count" -test.benchtime 2x
		(cd topology && "$bin/topology.test" -test.run XXX -test.bench 'RetimeDeiTSmall' -test.count "$count" -test.benchtime 100x)
	}
	section sizing rounds
}

kernels() {
	local tags=()
	if [ -e /usr/lib/x86_64-linux-gnu/libopenblas.so ]; then
		tags=(-tags openblas)
	else
		echo "no libopenblas-dev: the kernels run without the OpenBLAS rows" >&2
	fi
	go test "${tags[@]}" -c -o "$bin/kernels.test" ./kernels/
	# OpenBLAS's threads spin for a while after each call, which in the
	# paired benchmarks takes a core from the vitflow half that follows:
	# let them sleep at once, as vitflow's goroutines do. (PyTorch does not
	# need it: with passive OpenMP workers it ran alike with and without.)
	(cd kernels && OPENBLAS_THREAD_TIMEOUT=${OPENBLAS_THREAD_TIMEOUT:-4} section kernels "$bin/kernels.test" -test.run XXX -test.bench 'Gemm|BlockSparse|Elementwise|FirstNonFinite|ParallelHandoff' -test.count "$count")
}

forward() {
	go test -c -o "$bin/vit.test" ./vit/
	local torch=0
	if /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null; then
		torch=1
	else
		echo "no PyTorch for /usr/bin/python3 (apt-get install python3-torch python3-torchvision): vitflow only" >&2
	fi
	# Interleaved round by round, so that both meet the same machine.
	# PyTorch's OpenMP workers spin between operations by default and then
	# fight OpenBLAS's own threads for the two cores: at two threads it ran
	# 100-240 ms an image, and 40-54 with OMP_WAIT_POLICY=passive; at one
	# thread, where OpenBLAS still multiplies on both cores, 38-54 (three
	# rounds of every setting, 2026-12-03, in benches/README.md).
	rounds() {
		for _ in $(seq "$count"); do
			(cd vit && "$bin/vit.test" -test.run XXX -test.bench 'ForwardDeiTSmall' -test.benchtime 10x)
			if [ "$torch" = 1 ]; then
				for threads in 1 2; do
					OMP_WAIT_POLICY=passive /usr/bin/python3 benches/torch_deit.py "$threads" 10
					OMP_WAIT_POLICY=passive /usr/bin/python3 benches/torch_deit.py "$threads" 10 0.7
				done
			fi
		done
	}
	section forward rounds
}

# pgo compares the default build of the benchmarks with the profile-guided
# one, built as cmd/run is (its default.pgo, written by benches/pgo.sh):
# round by round, which build goes first alternating, the merge and a
# timing-only DeiT-S image in each, and each round's ratio of the two.
pgo() {
	go test -c -o "$bin/benches.test" ./benches/
	go test -c -pgo=cmd/run/default.pgo -o "$bin/benches-pgo.test" ./benches/
	rounds() {
		local b='Merge/copies=1/procs=1$|Merge/copies=2/procs=2$|TimingOnlyDeiTSmall' r t first second rc=0
		for r in $(seq "$count"); do
			first=benches second=benches-pgo
			if [ $((r % 2)) = 0 ]; then first=benches-pgo second=benches; fi
			for t in "$first" "$second"; do
				# The profile-guided build's lines renamed, failures kept
				# for section to find.
				(cd benches && "$bin/$t.test" -test.run XXX -test.bench "$b" -test.benchtime 5x) |
					awk -v t="$t" '/^Benchmark/ { if (t == "benches-pgo") sub(/^Benchmark/, "BenchmarkPGO"); print } /FAIL|panic:/' || rc=1
			done >"$out/pgo-round.txt"
			cat "$out/pgo-round.txt"
			awk '/^Benchmark/ {
				name = $1; sub(/-[0-9]+$/, "", name)
				for (i = 3; i < NF; i += 2) if ($(i + 1) == "elem/s" || $(i + 1) == "timing-run-ms") v[name] = $i
			}
			function gain(name, num, den) {
				if (!(num in v) || !(den in v) || v[den] == 0) { print "FAIL: no " name " in this round"; bad = 1; return }
				printf "BenchmarkPGOGain/%s 1 %.4f pgo/default\n", name, v[num] / v[den]
			}
			END {
				gain("Merge/copies=1/procs=1", "BenchmarkPGOMerge/copies=1/procs=1", "BenchmarkMerge/copies=1/procs=1")
				gain("Merge/copies=2/procs=2", "BenchmarkPGOMerge/copies=2/procs=2", "BenchmarkMerge/copies=2/procs=2")
				gain("TimingOnlyDeiTSmall", "BenchmarkTimingOnlyDeiTSmall", "BenchmarkPGOTimingOnlyDeiTSmall") # times: default over guided
				exit bad
			}' "$out/pgo-round.txt" || rc=1
		done
		return "$rc"
	}
	section pgo rounds
}

train() {
	go test -c -o "$bin/prune.test" ./prune/
	(cd prune && section train "$bin/prune.test" -test.run XXX -test.bench 'TrainStep' -test.count "$count" -test.benchtime 30x)
}

# fuzz runs every fuzz target alone for FUZZTIME (default 60s) and turns
# the fuzzer's last status line into a benchmark line (executions and new
# inputs), so that benchstat can set them side by side. Without
# -fuzzminimizetime 0 the fuzzer stops fuzzing for up to a minute to
# minimise each new input.
fuzz() {
	# Every package's fuzz targets, as package:target, found before the
	# section waits for a quiet machine.
	local targets
	mapfile -t targets < <(go test -run '^$' -list '^Fuzz' ./... |
		awk '/^Fuzz/ { names[++n] = $1; next } /^ok / { for (i = 1; i <= n; i++) print $2 ":" names[i]; n = 0 }')
	rounds() {
		local t pkg name log
		for t in "${targets[@]}"; do
			pkg=${t%%:*} name=${t#*:} log="$out/fuzz-$name.log"
			if ! go test -run '^$' -fuzz "^$name\$" -fuzzminimizetime 0 -fuzztime "${FUZZTIME:-60s}" "$pkg" >"$log" 2>&1; then
				# The failing input is now in the package's testdata/fuzz/$name.
				echo "# $name FAILED: see $log"
				echo "figures.sh: fuzz target $name failed: see $log" >&2
				failed="$failed $name"
				continue
			fi
			awk -v name="$name" '/execs: / { line = $0 } END {
				if (line == "") { print "# " name ": no status line"; exit }
				match(line, /execs: [0-9]+/); execs = substr(line, RSTART + 7, RLENGTH - 7)
				match(line, /new interesting: [0-9]+/); found = substr(line, RSTART + 17, RLENGTH - 17)
				printf "BenchmarkFuzz/%s 1 %s execs %s new-inputs\n", name, execs, found
			}' "$log"
		done
	}
	section fuzz rounds
}

# memory runs IMAGES (default 10,000) seeded DeiT-S images through the
# simulated u250 under GNU time, once: the report is that memory does not
# grow with the count.
memory() {
	go build -o "$bin/run" ./cmd/run
	rounds() {
		/usr/bin/time -v "$bin/run" -model deit-small -images "${IMAGES:-10000}" >"$out/memory-run.txt" 2>"$out/memory-time.txt"
		awk -v images="${IMAGES:-10000}" '
			/Maximum resident set size/ { rss = $NF }
			/User time/ { user = $NF }
			/Elapsed \(wall clock\)/ { n = split($NF, t, ":"); wall = 0; for (i = 1; i <= n; i++) wall = wall * 60 + t[i] }
			END { printf "BenchmarkMemory/deit-small/images=%d 1 %.0f ns/op %.0f B-max-RSS %.0f user-s\n", images, wall * 1e9, rss * 1024, user }
		' "$out/memory-time.txt"
	}
	section memory rounds
}

sections=("$@")
if [ ${#sections[@]} -eq 0 ]; then
	sections=(simulated merge pgo sweep sizing kernels forward train)
fi
for s in "${sections[@]}"; do
	case $s in
	simulated | merge | pgo | sweep | sizing | kernels | forward | train | fuzz | memory) "$s" ;;
	*)
		echo "figures.sh: unknown section $s (simulated, merge, pgo, sweep, sizing, kernels, forward, train, fuzz, memory)" >&2
		exit 2
		;;
	esac
done
echo "raw output and summaries in $out" >&2
if [ -n "$failed" ]; then
	echo "figures.sh: failed:$failed" >&2
	exit 1
fi
