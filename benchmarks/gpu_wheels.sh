#!/usr/bin/env bash
# Fetch, on a machine that reaches PyPI, the wheels that benchmarks/gpu_check.sh needs on the lent GPU machine
# (which reaches nothing): benchmarks/gpu_wheels.txt for CPython 3.12 on x86-64 Linux, into <repo>/.whl/
# (git-ignored, ~49 MB). Carry that folder to the machine (device tool: carry [".whl"]); gpu_check.sh installs it
# there into /tmp/gpu_check_site when Snakemake is missing.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$repo/.whl"
mkdir -p "$dest"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$dest" -r "$repo/benchmarks/gpu_wheels.txt"
# Snakemake's connection-pool is published as a source archive only; its wheel is pure Python, so build it here
python3 -m pip wheel -q --no-deps -w "$dest" connection-pool==0.0.3
du -sh "$dest"
