#!/usr/bin/env bash
# pgo.sh writes cmd/run/default.pgo, the CPU profile that go build, go run
# and go test of cmd/run use for profile-guided optimisation (-pgo=auto, the
# default): with it the compiler inlines the engine's hot calls (Ctx.Work,
# the FIFOs' Send, Recv and Peek, the occupancy sweep) into the actors that
# make them. The profile is a mix of what cmd/run spends its time on when it
# is slow (timing-only DeiT-S runs, sweeps and FIFO sizing, simulations with
# numerics) and the engine's merge benchmark. Any profile is safe: a stale
# one only optimises less. Re-run it when the hot code has changed much.
#
#   benches/pgo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/benches.test" ./benches/
(cd benches && "$tmp/benches.test" -test.run XXX -test.benchtime 5x -test.cpuprofile "$tmp/mix.prof" \
	-test.bench 'Merge/copies=1/procs=1$|AdderTree/procs=1$|SimulatedDeiTSmall/paired$|TimingOnlyDeiTSmall$|FIFOSizing/timing-only$|SweepDeiTSmall/jobs=1$')
cp "$tmp/mix.prof" cmd/run/default.pgo
echo "wrote cmd/run/default.pgo ($(wc -c <cmd/run/default.pgo) bytes)"
