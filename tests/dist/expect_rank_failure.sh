#!/bin/sh
# Runs cu3d_dist_tests' RankFailure test on 2 ranks with rank 1 killed or hung, and passes when the
# job ends with a non-zero status and a message saying why, instead of hanging (the outer
# `timeout` is the guard against the hang this test exists to catch).
# Usage: expect_rank_failure.sh MPIEXEC TEST_BINARY hang|kill
set -u
mpiexec=$1 binary=$2 mode=$3
output=$(CU3D_DIST_FAILURE=$mode timeout 120 "$mpiexec" -np 2 --oversubscribe --allow-run-as-root \
  -x CU3D_DIST_FAILURE "$binary" --gtest_filter='RankFailure.*' 2>&1)
status=$?
printf '%s\n' "$output"
if [ "$status" -eq 0 ] || [ "$status" -eq 124 ]; then
  echo "expect_rank_failure: exit status $status; expected a non-zero status before the timeout"
  exit 1
fi
# A hung rank: our message (rank 0's collective timed out). A killed rank: ours, or mpirun's when
# it saw rank 1 die first.
expected='no answer from the other ranks'
[ "$mode" = kill ] && expected="$expected|exited on signal|MPI .* failed"
if printf '%s\n' "$output" | grep -Eq "$expected"; then
  echo "expect_rank_failure: $mode: job stopped with status $status and a message"
  exit 0
fi
echo "expect_rank_failure: $mode: status $status but no message naming the failure"
exit 1
