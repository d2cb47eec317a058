#!/bin/sh
# A fuzz target as tools/test runs it: the same inputs every time, so a
# clean clone passes or fails the same way. libFuzzer starts from the
# checked-in corpus (CORPUS, never written to) and a fresh, empty working
# corpus (WORK, in the build tree), with a fixed seed and a bounded number
# of runs. Longer random fuzzing is tools/fuzz.
#   fuzz-fixed.sh WORK TARGET CORPUS [libFuzzer flags...]
set -eu
work=$1 target=$2 corpus=$3
shift 3
rm -rf "$work"
mkdir -p "$work"
exec "$target" -seed=1 -max_total_time=100 -artifact_prefix="$work/" "$@" "$work" "$corpus"
