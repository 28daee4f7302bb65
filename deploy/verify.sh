#!/usr/bin/env bash
# Check deploy/nightshift.service (or the unit file given as $1, e.g. deploy/nightshift-root.service) with `systemd-analyze verify`,
# on a machine where nightshift is not installed (a checkout, CI).
#
# What `systemd-analyze verify` checks: every line parses, every key exists, every value is
# valid, and the ExecStart= program (its first word only) is an executable file. The unit
# names the installed paths /usr/bin/node and /opt/nightshift/..., which may not exist here,
# so we verify a copy in a temporary folder whose ONLY change is that ExecStart line: this
# machine's node instead of /usr/bin/node, this checkout instead of /opt/nightshift. The diff
# is printed and must be exactly that one line, so nothing else escapes the check. Separately,
# the script ExecStart runs must be the package's `bin` entry, so the unit cannot drift from
# the build. (User=nightshift need not exist: verify does not look up users.)
#
# systemd-analyze exits 0 on many real mistakes (an unknown key or a bad value is "ignored"
# with a warning), so any line it prints counts as a failure, unless it names a different
# unit (a dependency broken on this machine is not our unit's fault; it is shown as a note).
#
# Exit: 0 ok; 1 the unit has problems; 2 cannot verify here (tool missing, unexpected layout).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
unit="${1:-$here/nightshift.service}"
name="$(basename "$unit")"
installed_node=/usr/bin/node
installed_root=/opt/nightshift

fail() { echo "verify.sh: $*" >&2; exit 1; }
cannot() { echo "verify.sh: $*" >&2; exit 2; }

command -v systemd-analyze >/dev/null 2>&1 ||
  cannot "systemd-analyze not found; install systemd (Debian/Ubuntu: apt-get install systemd)"
node_bin="$(command -v node)" || cannot "node not found on PATH"
[[ -f $unit ]] || cannot "no such unit file: $unit"

bin_rel="$(node -p 'const b = require(process.argv[1]).bin; (typeof b === "string" ? b : b.nightshift).replace(/^\.\//, "")' "$repo/package.json")"
prefix="ExecStart=$installed_node "
mapfile -t exec_lines < <(grep -E '^[[:space:]]*ExecStart=' "$unit" || true)
[[ ${#exec_lines[@]} -eq 1 ]] || fail "$name: expected exactly one ExecStart= line, found ${#exec_lines[@]}"
# node's own flags (--max-semi-space-size=1 ...) may stand between node and the script.
[[ ${exec_lines[0]} =~ ^ExecStart=$installed_node((\ --[^ ]+)*)\ $installed_root/$bin_rel\  ]] ||
  fail "$name: ExecStart= must be '$installed_node [--node-flags...] $installed_root/$bin_rel ...' (package.json bin); found: ${exec_lines[0]}"

# Containment: bubblewrap must be able to make its namespaces inside the unit. A unit that forbids
# them runs jobs uncontained and no fix at all (heal outcome "uncontained").
ns_line="$(grep -E '^[[:space:]]*RestrictNamespaces=' "$unit" | tail -n1 | sed 's/^[[:space:]]*RestrictNamespaces=//' || true)"
ns_sorted="$(tr ' ' '\n' <<<"$ns_line" | grep -v '^$' | sort | tr '\n' ' ')"
[[ $ns_sorted == "ipc mnt pid user " ]] ||
  fail "$name: RestrictNamespaces= must be exactly 'user mnt pid ipc' (what bubblewrap needs, nothing more); found: '${ns_line}'"
for key in ProtectKernelTunables ProtectProc ProcSubset PrivateUsers; do
  if grep -qE "^[[:space:]]*$key=" "$unit"; then
    fail "$name: $key= keeps bubblewrap from mounting a sandbox's /proc (or mapping its user); remove it"
  fi
done

# Root mode (no User=, or User=root): the daemon keeps only a bounding set of capabilities, and
# bubblewrap cannot set up a sandbox without these two (jobs would run uncontained, no fix would
# run, a rollback would fail); setpriv needs the next two to run a job as its `user:`.
run_user="$(grep -E '^[[:space:]]*User=' "$unit" | tail -n1 | sed 's/^[[:space:]]*User=//' || true)"
if [[ -z $run_user || $run_user == root || $run_user == 0 ]]; then
  caps="$(grep -E '^[[:space:]]*CapabilityBoundingSet=' "$unit" | tail -n1 | sed 's/^[[:space:]]*CapabilityBoundingSet=//' || true)"
  [[ -n $caps ]] ||
    fail "$name: runs the daemon as root without CapabilityBoundingSet=: give it only what it needs (see deploy/nightshift-root.service)"
  for cap in CAP_SYS_ADMIN CAP_SETFCAP CAP_SETUID CAP_SETGID; do
    [[ " $caps " == *" $cap "* ]] ||
      fail "$name: runs the daemon as root, and CapabilityBoundingSet= lacks $cap, which bubblewrap or setpriv needs (see deploy/nightshift-root.service)"
  done
  grep -qE '^[[:space:]]*NoNewPrivileges=yes' "$unit" ||
    fail "$name: runs the daemon as root without NoNewPrivileges=yes"
fi

grep -qE '^[[:space:]]*RestartPreventExitStatus=.*\b4\b' "$unit" ||
  fail "$name: RestartPreventExitStatus=4 is missing: after its home was moved away, nightshift stops with exit code 4 and must not be restarted on whatever is at the path now"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/ns-verify.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
copy="$tmp/$name"
while IFS= read -r line || [[ -n $line ]]; do
  if [[ $line == "$prefix"* ]]; then
    rest="${line#"$prefix"}"
    flags=""
    while [[ $rest == --* ]]; do
      flags+="${rest%% *} "
      rest="${rest#* }"
    done
    rest="${rest#"$installed_root/"}"
    script="${rest%% *}"
    # Quoted so that a path with spaces stays one argument; % doubled so that systemd does
    # not read it as a specifier.
    printf 'ExecStart="%s" %s"%s/%s"%s\n' "${node_bin//%/%%}" "$flags" "${repo//%/%%}" "$script" "${rest#"$script"}"
  else
    printf '%s\n' "$line"
  fi
done <"$unit" >"$copy"

changed="$(diff "$unit" "$copy" | grep -c '^[<>]' || true)"
[[ $changed -eq 2 ]] || cannot "the verified copy should differ from $name by exactly the ExecStart line; diff:
$(diff "$unit" "$copy" || true)"
echo "verify.sh: verifying a copy of $unit with ExecStart rewritten for this machine:"
diff "$unit" "$copy" | sed 's/^/  /' || true
[[ -e $repo/$bin_rel ]] ||
  echo "verify.sh: note: $repo/$bin_rel is not built yet (systemd-analyze does not check ExecStart arguments)"

# --man=no: there is no nightshift man page, and that check tests the machine, not the unit.
# --recursive-errors=no: judge this unit, not whatever else is installed on this machine.
set +e
output="$(systemd-analyze verify --man=no --recursive-errors=no "$copy" 2>&1)"
rc=$?
set -e

problems=0
while IFS= read -r line; do
  [[ -z $line ]] && continue
  line="${line//"$copy"/"$unit"}"
  if [[ $line =~ ^(/[^:]*/)?([^/:[:space:]]+\.(service|socket|target|timer|path|mount|automount|swap|slice|scope|device))(:[0-9]+)?:\  ]] &&
    [[ ${BASH_REMATCH[2]} != "$name" ]]; then
    echo "verify.sh: note (about another unit, not ours): $line"
  else
    echo "verify.sh: PROBLEM: $line" >&2
    problems=$((problems + 1))
  fi
done <<<"$output"

if [[ $rc -ne 0 || $problems -ne 0 ]]; then
  fail "$name failed verification (systemd-analyze exit $rc, $problems problem line(s))"
fi
echo "verify.sh: $name OK ($(systemd-analyze --version | head -n1))"
