#!/usr/bin/env bash
# Stop the single-node SLURM started by ci/slurm/start.sh (slurmd, slurmctld, munged). Safe to run twice.
set -u
stop_pid() {  # stop_pid NAME PIDFILE
  local pid
  [ -s "$2" ] || return 0
  pid=$(cat "$2")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && { echo "ci/slurm: $1 ($pid) ignores SIGTERM, killing"; kill -9 "$pid"; }
    echo "ci/slurm: stopped $1 ($pid)"
  fi
  rm -f "$2"
}
stop_pid slurmd /run/slurm/slurmd.pid
stop_pid slurmctld /run/slurm/slurmctld.pid
stop_pid munged /run/munge/munged.pid
exit 0
