#!/usr/bin/env bash
# The GPU check of benchmarks/gpu_check.py (its docstring says what it runs): on a machine with one GPU,
#   bash benchmarks/gpu_check.sh                 # <= 8 min; results in $OUT, else ./gpu_check_out
#   bash benchmarks/gpu_check.sh --dry --out D   # the same code on the CPU at tiny sizes (~2 min on 2 cores)
# Arguments pass through (--help lists them); a later --out overrides the default. Uses this checkout's src/
# (no install needed beyond the dependencies) and keeps the whole console output in <out>/gpu_check.log.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${OUT:-gpu_check_out}"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --out) out="${args[i + 1]:?--out needs a folder}" ;;
    --out=*) out="${args[i]#--out=}" ;;
  esac
done
mkdir -p "$out"
export PYTHONPATH="$repo/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python="${PYTHON:-python3}"
"$python" "$repo/benchmarks/gpu_check.py" --out "$out" "$@" 2>&1 | tee "$out/gpu_check.log"
