#!/usr/bin/env bash
# figures.sh runs the benchmarks behind benches/README.md, section by
# section, each with -count (COUNT, default 6: the fewest samples benchstat
# gives a confidence interval for), and summarises every section with
# benchstat, writing the load average before and after each one. Run it
# alone: each section first waits for the 1-minute load average to fall
# below QUIET (default 0.5). The raw output and the summaries go to OUT
# (default /tmp/vitflow-figures).
#
#   benches/figures.sh                  # every section
#   benches/figures.sh simulated merge  # some of them
#
# Sections: simulated (the DeiT-S accelerator beside the reference), merge
# (the engine), sweep (100-point sweeps: DeiT-S timing-only, mnist-tiny with
# 500 images a point; one point at a time and one per core), sizing (FIFO
# sizing of u250 for DeiT-S against simulating its candidates, one
# re-timing, one DeiT-S point with and without numerics), kernels (dense and block-sparse GEMM, element-wise; against
# OpenBLAS when libopenblas-dev is installed), forward (the DeiT-S reference
# forward; against PyTorch when /usr/bin/python3 has torch and torchvision).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/vitflow-figures}
count=${COUNT:-6}
mkdir -p "$out"
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
	{
		echo "# $name: $*"
		echo "# load before: $(load)"
		"$@"
		echo "# load after: $(load)"
	} >"$out/$name.txt" 2>&1
	benchstat "$out/$name.txt" >"$out/$name.stat"
	cat "$out/$name.stat"
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
	# let them sleep at once, as vitflow's goroutines do.
	# (Only here: PyTorch at two threads ran 150-184 ms an image with it
	# against 45-48 without.)
	(cd kernels && OPENBLAS_THREAD_TIMEOUT=${OPENBLAS_THREAD_TIMEOUT:-4} section kernels "$bin/kernels.test" -test.run XXX -test.bench 'Gemm|BlockSparse|Elementwise|FirstNonFinite' -test.count "$count")
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
	# 150-220 ms an image, and 45-48 with OMP_WAIT_POLICY=passive, its best
	# setting here (at one thread, where OpenBLAS still multiplies on both
	# cores, it ran 48-52).
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

sections=("$@")
if [ ${#sections[@]} -eq 0 ]; then
	sections=(simulated merge sweep sizing kernels forward)
fi
for s in "${sections[@]}"; do
	case $s in
	simulated | merge | sweep | sizing | kernels | forward) "$s" ;;
	*)
		echo "figures.sh: unknown section $s (simulated, merge, sweep, sizing, kernels, forward)" >&2
		exit 2
		;;
	esac
done
echo "raw output and summaries in $out" >&2
