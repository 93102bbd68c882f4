#!/usr/bin/env bash
# The GPU check of benchmarks/gpu_check.py (its docstring says what it runs): on a machine with one GPU,
#   bash benchmarks/gpu_check.sh                 # <= 8 min; results in $OUT, else ./gpu_check_out
#   bash benchmarks/gpu_check.sh --dry --out D   # the same code on the CPU at tiny sizes (~2 min on 2 cores)
# Arguments pass through (--help lists them); --out overrides the default. Uses this checkout's src/ (no install
# needed beyond the dependencies; on a machine without them, the wheels that benchmarks/gpu_wheels.sh put in .whl/
# are installed first) and keeps the whole console output in <out>/gpu_check.log.
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
python="${PYTHON:-python3}"
# the lent GPU machine reaches no package index: the wheels of benchmarks/gpu_wheels.sh travel in .whl/
if [ -d "$repo/.whl" ] && ! "$python" -c "import snakemake, rasterio" 2>/dev/null; then
  site=/tmp/gpu_check_site
  # a failed install is reported and the check still starts: its own error names what is missing
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
    "$repo"/.whl/*.whl || echo "gpu_check.sh: installing the wheels of .whl/ failed; trying without them" >&2
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$repo/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$python" "$repo/benchmarks/gpu_check.py" --out "$out" "$@" 2>&1 | tee "$out/gpu_check.log"
