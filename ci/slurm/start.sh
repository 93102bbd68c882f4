#!/usr/bin/env bash
# Install (Debian: slurm-wlm + munge) and start a single-node SLURM on this machine, for tests/test_slurm.py.
# Idempotent; needs root. slurmctld + slurmd on localhost, no accounting database (no slurmdbd), so `sacct` does
# not work: the Snakemake SLURM executor must query job states with `squeue` (--slurm-status-command squeue).
# Logs: /var/log/slurm/slurmctld.log, /var/log/slurm/slurmd.log.   Stop with ci/slurm/stop.sh.
set -euo pipefail
die() { echo "ci/slurm/start.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  echo "ci/slurm: installing slurm-wlm and munge from Debian"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge; } \
    || die "apt-get install slurm-wlm munge failed"
fi

# --- slurm.conf: one node (localhost) with this machine's CPUs and memory ---
# slurmd -C prints e.g. "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105"
hw=$(slurmd -C | head -1) || die "slurmd -C failed"
cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
mem=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
[ -n "$cpus" ] && [ -n "$mem" ] || die "could not parse 'slurmd -C': $hw"
mem=$(( mem * 95 / 100 ))  # leave the OS a little, else slurmd may drain the node for low memory
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
cat > /etc/slurm/slurm.conf.new <<CONF
# written by ci/slurm/start.sh — single-node test cluster, no accounting
ClusterName=ci
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# finished jobs stay visible to squeue for 5 min: the executor's squeue status check needs that
# (it falls back to sacct — unusable here — when MinJobAge < 3 x its first status-check delay)
MinJobAge=300
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
changed=0
if ! cmp -s /etc/slurm/slurm.conf.new /etc/slurm/slurm.conf 2>/dev/null; then
  mv /etc/slurm/slurm.conf.new /etc/slurm/slurm.conf; changed=1
else
  rm -f /etc/slurm/slurm.conf.new
fi
# no gres.conf: the test node has no GPUs
if [ "$changed" = 1 ]; then  # a new config: restart whatever runs (munged too; started again below)
  bash "$(dirname "$0")/stop.sh" >/dev/null 2>&1 || true
fi


# --- munge (authentication between SLURM commands and daemons) ---
if [ ! -s /etc/munge/munge.key ]; then
  echo "ci/slurm: creating /etc/munge/munge.key"
  mkdir -p /etc/munge
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  setpriv --reuid=munge --regid=munge --clear-groups /usr/sbin/munged || die "munged did not start (see /var/log/munge/munged.log)"
  for _ in $(seq 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
  munge -n | unmunge >/dev/null || { tail -n 20 /var/log/munge/munged.log >&2; die "munge does not work after starting munged"; }
fi

running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
running /run/slurm/slurmctld.pid || /usr/sbin/slurmctld || die "slurmctld did not start (see /var/log/slurm/slurmctld.log)"
running /run/slurm/slurmd.pid || /usr/sbin/slurmd -N localhost || die "slurmd did not start (see /var/log/slurm/slurmd.log)"

# --- wait until the node is idle ---
timeout=${SLURM_START_TIMEOUT:-60}
SECONDS=0
while [ "$SECONDS" -lt "$timeout" ]; do
  state=$(sinfo -h -N -n localhost -o %t 2>/dev/null || true)
  case "$state" in
    idle|mix|alloc)
      # idle can be the state saved by an earlier slurmctld: prove that a job really runs on the node
      if out=$(timeout "$timeout" srun -N1 -n1 -t 1 echo slurm-ok 2>&1) && [ "$out" = slurm-ok ]; then
        echo "ci/slurm: node localhost is $state and runs jobs (CPUs=$cpus RealMemory=$mem MB)"; sinfo; exit 0
      fi
      echo "--- srun test job ---" >&2; echo "$out" >&2; state="$state, but a test job did not run"; break ;;
    drain*|down*) scontrol update NodeName=localhost State=RESUME 2>/dev/null || true ;;
  esac
  sleep 1
done
echo "--- sinfo ---" >&2; sinfo -N -l >&2 || true
echo "--- slurmctld.log ---" >&2; tail -n 30 /var/log/slurm/slurmctld.log >&2 || true
echo "--- slurmd.log ---" >&2; tail -n 30 /var/log/slurm/slurmd.log >&2 || true
die "node localhost not ready ${timeout}s after start (state: '${state:-none}')"
