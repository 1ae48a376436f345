#!/usr/bin/env bash
# A race hunt on a real batch engine: a single-node Slurm (Debian's slurm-wlm, with munge) brought
# up on this machine, the hunt submitted as a job array (one shard per array task, --shard auto
# reads SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT), the shards merged, and the merged answer
# checked against the same hunt run unsharded. Everything it started is stopped at the end.
#
#   bash scripts/slurm-demo.sh [SHARDS]        (needs root and apt, or slurm-wlm and munge installed)
#
# A user with a real cluster skips the set-up: `sbatch --array=0-7 --wait` the same job script
# (with the ptlab checkout or container image on every node), then `ptlab merge`.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARDS=${1:-4}
HUNT=(race-split-reshare --bug split-unshares-early --strategy pct --runs 200 --seed 11)
work=$(mktemp -d /tmp/ptlab-slurm.XXXXXX)
chmod 755 "$work"
started=()

say() { echo "slurm-demo: $*"; }
cleanup() {
  for p in "${started[@]:-}"; do [ -n "$p" ] && pkill -x "$p" 2>/dev/null || true; done
  # Wait (10 s at most) until the daemons it stopped are gone (pgrep -x takes one name of 15 characters at most).
  for i in $(seq 1 20); do
    alive=0
    for p in "${started[@]:-}"; do [ -n "$p" ] && pgrep -x "$p" >/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.5
  done
  say "stopped ${started[*]:-nothing}; files in $work"
}
trap cleanup EXIT

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  [ "$(id -u)" = 0 ] || { say "slurm-wlm and munge are not installed, and installing them needs root"; exit 2; }
  say "installing slurm-wlm and munge (Debian packages)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge >"$work/apt.log" 2>&1 ||
    { apt-get update >>"$work/apt.log" 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge >>"$work/apt.log" 2>&1; }
fi
[ -d node_modules ] || npm ci --no-audit --no-fund >"$work/npm.log" 2>&1
node scripts/build.mjs >/dev/null

# munge: the key and the daemon Slurm authenticates with.
mkdir -p /etc/munge /var/log/munge /var/lib/munge /run/munge
[ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
chown -R munge:munge /etc/munge /var/log/munge /var/lib/munge /run/munge 2>/dev/null || true
chmod 400 /etc/munge/munge.key
if ! pgrep -x munged >/dev/null; then
  if id munge >/dev/null 2>&1; then runuser -u munge -- munged; else munged --force; fi
  started+=(munged)
fi

# A one-node cluster: this host is the controller and the only compute node, with its cores.
host=$(hostname -s)
cores=$(nproc)
mem=$(awk '/MemTotal/ { print int($2 / 1024 * 0.8) }' /proc/meminfo)
conf=/etc/slurm/slurm.conf
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat >"$conf" <<EOF
# written by ptlab's scripts/slurm-demo.sh
ClusterName=ptlab
SlurmctldHost=$host
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmUser=root
SlurmdUser=root
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
MpiDefault=none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
NodeName=$host CPUs=$cores RealMemory=$mem State=UNKNOWN
PartitionName=ptlab Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
# (no cgroup.conf: proctrack/linuxproc and task/none need no cgroup plugin)
pgrep -x slurmctld >/dev/null || { slurmctld -c; started+=(slurmctld); }
pgrep -x slurmd >/dev/null || { slurmd; started+=(slurmd); }
for i in $(seq 1 30); do
  sinfo -h -o '%T' 2>/dev/null | grep -qE 'idle|mix|alloc' && break
  scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
  sleep 1
done
sinfo -h -o '%T' | grep -qE 'idle|mix|alloc' || { say "the node did not come up: $(sinfo 2>&1 | tail -1)"; exit 1; }
say "Slurm is up: $(sinfo -h -o '%P %D node(s) %c CPUs %T')"

# The job script: one shard per array task; each writes its result for the merge.
mkdir -p "$work/shards"
cat >"$work/hunt.sbatch" <<EOF
#!/usr/bin/env bash
#SBATCH --job-name=ptlab-hunt
#SBATCH --output=$work/shard-%a.log
#SBATCH --cpus-per-task=1
cd "$PWD"
node bin/ptlab.mjs explore ${HUNT[*]} --jobs 1 --shard auto --out "$work/shards/s\$SLURM_ARRAY_TASK_ID.json"
# exit 1 means this shard found a failure: the array task still succeeded in running the hunt.
rc=\$?; [ \$rc -le 1 ] || exit \$rc
EOF
say "sbatch --array=0-$((SHARDS - 1)) --wait (${HUNT[*]})"
t0=$(date +%s.%N)
sbatch --array=0-$((SHARDS - 1)) --wait "$work/hunt.sbatch"
t1=$(date +%s.%N)
node bin/ptlab.mjs merge "$work"/shards/s*.json --json >"$work/merged.json" || true
node bin/ptlab.mjs explore "${HUNT[@]}" --jobs 1 --json >"$work/whole.json" || true
t2=$(date +%s.%N)
node -e '
const m = require(process.argv[1]), w = require(process.argv[2]);
const same = m.ok === w.ok && m.runs === w.runs && m.token === w.token;
console.log(`slurm-demo: merged ${process.argv[3]} shards: ${m.ok ? "pass" : `first failure at run ${m.runs}`}; unsharded: ${w.ok ? "pass" : `first failure at run ${w.runs}`}; same token: ${m.token === w.token}`);
const fs = require("fs"), dir = require("path").dirname(process.argv[1]) + "/shards";
const secs = fs.readdirSync(dir).map((f) => JSON.parse(fs.readFileSync(dir + "/" + f, "utf8")).seconds);
console.log(`slurm-demo: sbatch --wait returned after ${(+process.argv[4]).toFixed(1)} s (it polls with a back-off); the shards ran ${Math.max(...secs).toFixed(1)} s at most each; the unsharded hunt (--jobs 1) took ${(+process.argv[5]).toFixed(1)} s`);
process.exit(same ? 0 : 1);
' "$work/merged.json" "$work/whole.json" "$SHARDS" "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)"
