#!/usr/bin/env bash
# Install (or upgrade) nightshift as a systemd service, from a clone in which `npm ci && npm run build`
# has run. Run as root:
#
#   deploy/install.sh               the plain unit: the daemon runs as the account `nightshift`
#   deploy/install.sh --root-mode   the root-mode unit (deploy/nightshift-root.service): for root's
#                                   crontab and for jobs with `user: NAME`
#
# What it does, in this order (every step is safe to repeat):
#   1. checks: root, Node.js >= 20 at /usr/bin/node (what the unit runs), bubblewrap, systemd-analyze,
#      and a built clone (dist/cli.js, complete production node_modules/ with its native addons);
#   2. the system account `nightshift` (no login, no home directory of its own);
#   3. stages the program in /opt/.nightshift.new.XXXXXX: dist/, the production node_modules/
#      (copied from the clone, not downloaded: the addons are already built), package.json,
#      package-lock.json, deploy/, docs/, README.md; checks that it loads, and verifies the unit it
#      ships with deploy/verify.sh. Nothing installed has changed yet: a failure here leaves the
#      running version as it was;
#   4. the home /etc/nightshift (jobs/, rules/, protected/policy.yaml): created when missing, an
#      existing file is never overwritten; then `nightshift validate`;
#   5. the polkit rule for policy.restartUnits (granting nothing until its UNITS list is filled in),
#      when missing; the command /usr/local/bin/nightshift (a wrapper with --home and --state);
#   6. stops the service (an upgrade), copies the database aside (/var/backups/nightshift/, for a
#      roll back), moves /opt/nightshift to /opt/nightshift.previous and the staged one into its
#      place, installs the unit file (never a drop-in: nightshift.service.d/ is the operator's);
#   7. systemctl daemon-reload, enable --now (restart on an upgrade), and prints what to type next.
#
# /var/lib/nightshift (the state: database, run logs, snapshots, digests, KILL) is never touched;
# systemd creates it (StateDirectory=).
#
# --root DIR installs into the tree DIR instead of / (tests, image builds): every path is prefixed
# with DIR, nothing is asked of systemd, and the account is written to DIR/etc/passwd and
# DIR/etc/group (with `useradd --root DIR` when run as root; by hand otherwise).
#
# Exit: 0 installed; 1 a check or step failed (the message says what to do); 2 usage.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ACCOUNT=nightshift
args=("$@")

usage() {
  cat <<'END'
Usage: deploy/install.sh [--root-mode] [--from DIR] [--root DIR]

Installs or upgrades nightshift as the systemd service `nightshift` (run as root).

  --root-mode   install deploy/nightshift-root.service: the daemon runs as root, so that root's
                crontab and jobs with `user: NAME` can run; without it, deploy/nightshift.service
                (the daemon runs as the account nightshift)
  --from DIR    the built clone to install from (default: the clone this script is in); it needs
                `npm ci && npm run build` done
  --root DIR    install into the tree DIR instead of / (tests, image builds): no systemctl, and
                the account goes into DIR/etc/passwd and DIR/etc/group
  -h, --help    this text

Keeps /var/lib/nightshift (state) and the files of /etc/nightshift (jobs, rules, policy) as they
are; the previous program stays in /opt/nightshift.previous. See deploy/README.md.
END
}

die() {
  echo "install.sh: $*" >&2
  exit 1
}
say() { echo "install.sh: $*"; }

root=""
root_mode=0
from="$(dirname "$here")"
while [[ $# -gt 0 ]]; do
  case "$1" in
  --root)
    [[ $# -ge 2 && -n $2 ]] || {
      echo "install.sh: --root needs a folder" >&2
      exit 2
    }
    root="$2"
    shift 2
    ;;
  --root-mode)
    root_mode=1
    shift
    ;;
  --from)
    [[ $# -ge 2 && -n $2 ]] || {
      echo "install.sh: --from needs a folder" >&2
      exit 2
    }
    from="$2"
    shift 2
    ;;
  -h | --help)
    usage
    exit 0
    ;;
  *)
    echo "install.sh: unknown argument: $1 (see --help)" >&2
    exit 2
    ;;
  esac
done

# ------------------------------------------------------------------ 1. checks

if [[ -n $root ]]; then
  mkdir -p "$root"
  root="$(cd "$root" && pwd -P)"
  [[ $root != / ]] || die "--root / is the real system: leave --root out"
  real_install=0
else
  [[ $(id -u) -eq 0 ]] || die "must run as root (it creates an account and installs a system service): sudo $0 ${args[*]}"
  real_install=1
fi
is_root=0
[[ $(id -u) -eq 0 ]] && is_root=1

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
# The unit runs /usr/bin/node; in a tree (--root) this machine's node stands in for it.
if [[ $real_install -eq 1 ]]; then
  node=/usr/bin/node
  [[ -x $node ]] || die "no Node.js at /usr/bin/node, which the unit runs: install Node.js 20 or newer (Debian/Ubuntu: the NodeSource packages, https://github.com/nodesource/distributions)"
else
  node="$(command -v node)" || die "node is not on PATH: install Node.js 20 or newer"
fi
[[ $(node_major "$node") -ge 20 ]] ||
  die "$node is Node.js $("$node" --version 2>/dev/null || echo '?'); nightshift needs 20 or newer (Debian/Ubuntu: the NodeSource packages)"
command -v bwrap >/dev/null 2>&1 ||
  die "bubblewrap (bwrap) is missing; nightshift contains every job and fix with it: apt-get install bubblewrap"
command -v systemd-analyze >/dev/null 2>&1 ||
  die "systemd-analyze is missing, so the unit cannot be verified: apt-get install systemd"

[[ -d $from ]] || die "--from $from: no such folder"
from="$(cd "$from" && pwd -P)"
if [[ ! -f $from/package.json ]] || [[ $("$node" -p 'require(process.argv[1]).name' "$from/package.json") != nightshift ]]; then
  die "$from is not a nightshift clone (no package.json named nightshift)"
fi
[[ -f $from/dist/cli.js ]] || die "$from is not built (no dist/cli.js): run 'npm ci && npm run build' there first"
[[ -d $from/node_modules ]] || die "$from has no node_modules/: run 'npm ci && npm run build' there first"
command -v npm >/dev/null 2>&1 || die "npm is not on PATH (it comes with Node.js)"
version="$("$node" -p 'require(process.argv[1]).version' "$from/package.json")"
commit="$(git -C "$from" rev-parse --short HEAD 2>/dev/null || echo unknown)"
unit_src=nightshift.service
[[ $root_mode -eq 1 ]] && unit_src=nightshift-root.service
mode_name="plain unit: the daemon runs as $ACCOUNT"
[[ $root_mode -eq 1 ]] && mode_name="root-mode unit: the daemon runs as root"

opt="$root/opt/nightshift"
etc_home="$root/etc/nightshift"
state="$root/var/lib/nightshift"
unit_dir="$root/etc/systemd/system"
unit_dst="$unit_dir/nightshift.service"
polkit_dst="$root/etc/polkit-1/rules.d/50-nightshift-restart.rules"
wrapper="$root/usr/local/bin/nightshift"
backups="$root/var/backups/nightshift"

# Ours to replace, or nothing there (an `npm link` or another program's file is not replaced).
if [[ -e $wrapper || -L $wrapper ]] && ! grep -q '^# nightshift command wrapper' "$wrapper" 2>/dev/null; then
  die "$wrapper exists and is not nightshift's command wrapper: move it away, then again"
fi

# The production dependencies, as npm sees them in the clone: also proves the tree is complete.
prod_list="$(cd "$from" && npm ls --omit=dev --all --parseable 2>/dev/null)" ||
  die "$from/node_modules is incomplete or does not match package.json (npm ls --omit=dev fails): run 'npm ci' there"

# ------------------------------------------------------------------ 2. the account

passwd_has() { grep -q "^$ACCOUNT:" "$1" 2>/dev/null; }
if [[ $real_install -eq 1 ]]; then
  if getent passwd "$ACCOUNT" >/dev/null; then
    say "account $ACCOUNT exists"
  else
    useradd --system --user-group --no-create-home --home-dir /var/lib/nightshift \
      --shell /usr/sbin/nologin --comment "nightshift job supervisor" "$ACCOUNT"
    say "account $ACCOUNT created (system account, no login, no home directory of its own)"
  fi
  gid="$(id -g "$ACCOUNT")"
else
  mkdir -p "$root/etc"
  if passwd_has "$root/etc/passwd"; then
    say "account $ACCOUNT exists in $root/etc/passwd"
  elif [[ $is_root -eq 1 ]] && command -v useradd >/dev/null 2>&1; then
    for f in passwd group shadow gshadow; do
      [[ -e $root/etc/$f ]] || install -m "$([[ $f == *shadow ]] && echo 0640 || echo 0644)" /dev/null "$root/etc/$f"
    done
    useradd --root "$root" --system --user-group --no-create-home --home-dir /var/lib/nightshift \
      --shell /usr/sbin/nologin --comment "nightshift job supervisor" "$ACCOUNT"
    say "account $ACCOUNT created in $root/etc/passwd (useradd --root)"
  else
    # Not root: useradd --root needs chroot. The same entries, written by hand: the highest free
    # system id below 1000, as useradd --system picks it.
    touch "$root/etc/passwd" "$root/etc/group"
    id_free() { ! cut -d: -f3 "$root/etc/passwd" "$root/etc/group" | grep -qx "$1"; }
    new=999
    while [[ $new -ge 100 ]] && ! id_free "$new"; do new=$((new - 1)); done
    [[ $new -ge 100 ]] || die "no free system id in $root/etc/passwd"
    echo "$ACCOUNT:x:$new:$new:nightshift job supervisor:/var/lib/nightshift:/usr/sbin/nologin" >>"$root/etc/passwd"
    grep -q "^$ACCOUNT:" "$root/etc/group" || echo "$ACCOUNT:x:$new:" >>"$root/etc/group"
    say "account $ACCOUNT written to $root/etc/passwd and $root/etc/group (not root: without useradd)"
  fi
  gid="$(awk -F: -v a="$ACCOUNT" '$1 == a { print $4 }' "$root/etc/passwd")"
fi

# ------------------------------------------------------------------ 3. stage the program

mkdir -p "$root/opt"
stage="$(mktemp -d "$root/opt/.nightshift.new.XXXXXX")"
cleanup() {
  if [[ -n ${stage:-} && -d $stage ]]; then rm -rf "$stage"; fi
  # Stopped for the upgrade, then something failed before the switch: the old version runs again.
  if [[ ${restart_old:-0} -eq 1 ]]; then
    echo "install.sh: starting the previous version again" >&2
    systemctl start nightshift || true
  fi
  return 0
}
trap cleanup EXIT
chmod 0755 "$stage"
for f in package.json package-lock.json README.md LICENSE; do
  if [[ -f $from/$f ]]; then cp -p "$from/$f" "$stage/$f"; fi
done
for d in dist deploy docs; do
  if [[ -d $from/$d ]]; then cp -R -p "$from/$d" "$stage/$d"; fi
done
# Production packages only, each copied whole (a nested node_modules/ comes with its parent).
mkdir "$stage/node_modules"
copied=()
while IFS= read -r p; do
  [[ $p == "$from" || -z $p ]] && continue
  rel="${p#"$from"/}"
  inside=0
  for c in "${copied[@]}"; do [[ $rel == "$c"/* ]] && inside=1 && break; done
  [[ $inside -eq 1 ]] && continue
  mkdir -p "$stage/$(dirname "$rel")"
  cp -R -p "$from/$rel" "$stage/$rel"
  copied+=("$rel")
done < <(printf '%s\n' "$prod_list" | sort)
printf 'version=%s\ncommit=%s\nfrom=%s\ninstalled=%s\nmode=%s\n' "$version" "$commit" "$from" \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$([[ $root_mode -eq 1 ]] && echo root || echo plain)" >"$stage/INSTALLED"
if [[ $is_root -eq 1 ]]; then chown -R 0:0 "$stage"; fi
# Read-only for everyone but root: neither the daemon nor a job may change the program.
chmod -R u+rwX,go+rX,go-w "$stage"

started="$("$node" "$stage/dist/cli.js" --version 2>&1)" ||
  die "the staged program does not start with $node: $(tail -n 3 <<<"$started")"
# The native addons, loaded by the node the unit runs (they are built for one Node.js ABI).
# shellcheck disable=SC2016
addons='try { new (require(process.argv[1] + "/better-sqlite3"))(":memory:").close() } catch { process.exit(3) }
try { require(process.argv[1] + "/unix-dgram") } catch { process.exit(4) }'
addon_rc=0
"$node" -e "$addons" "$stage/node_modules" 2>/dev/null || addon_rc=$?
[[ $addon_rc -ne 3 ]] ||
  die "the database driver (better-sqlite3) does not load with $node ($("$node" --version)): it was built for another Node.js; run 'npm rebuild' in $from with that node, then again"
[[ $addon_rc -eq 0 ]] ||
  die "the unix-dgram addon (systemd notifications; without it systemd stops the daemon after 90 s) does not load: install a C++ toolchain (apt-get install build-essential python3), run 'npm ci' in $from, then again"
say "staged nightshift $version ($commit) with $((${#copied[@]})) production packages"

bash "$stage/deploy/verify.sh" "$stage/deploy/$unit_src" ||
  die "deploy/$unit_src failed verification (above); nothing was changed"

# ------------------------------------------------------------------ 4. the home

created_home=()
make_dir() {
  if [[ ! -d $1 ]]; then
    mkdir -p "$1"
    chmod 0750 "$1"
    if [[ $is_root -eq 1 ]]; then chown "0:$gid" "$1"; fi
    created_home+=("$1")
  fi
  return 0
}
make_dir "$etc_home"
for d in jobs rules protected; do make_dir "$etc_home/$d"; done
if [[ -e $etc_home/protected/policy.yaml ]]; then
  say "$etc_home/protected/policy.yaml exists: kept as it is"
else
  tmp_policy="$(mktemp "$etc_home/protected/.policy.yaml.XXXXXX")"
  cat >"$tmp_policy" <<'END'
# The guardrails (written by deploy/install.sh; it never overwrites this file). Every field:
# /opt/nightshift/docs/reference.md. Check after an edit: nightshift validate
#
# timezone: Europe/Zurich      # default: the system's
# Every fix starts as a proposal or a question until you trust it: raise to `auto` later.
autonomy: gated
maxAttempts: 2
protect: []
# Units a rule may restart; list the same in /etc/polkit-1/rules.d/50-nightshift-restart.rules.
restartUnits: []
digest:
  at: "07:00"
  to: []                      # e.g. ["you@example.com"]; also from: and smtp: or sendmail:
# Only these may interrupt a human at once (page.command sends them; everything else waits for
# the digest).
page:
  allow: [protected-zone, heal-blocked, daemon-restart-loop]
dashboard:
  listen: 127.0.0.1:8787      # "off" turns it off; nightshift login prints a link to it
END
  chmod 0640 "$tmp_policy"
  if [[ $is_root -eq 1 ]]; then chown "0:$gid" "$tmp_policy"; fi
  mv "$tmp_policy" "$etc_home/protected/policy.yaml"
  created_home+=("$etc_home/protected/policy.yaml")
fi
for c in "${created_home[@]}"; do say "created $c"; done
# Checked by the staged program, as the daemon's account on a real install (proves it can read it).
validate=("$node" "$stage/dist/cli.js" --home "$etc_home" validate)
if [[ $real_install -eq 1 && $root_mode -eq 0 ]]; then validate=(runuser -u "$ACCOUNT" -- "${validate[@]}"); fi
if validate_out="$("${validate[@]}" 2>&1)"; then
  say "nightshift validate: $validate_out"
else
  while IFS= read -r line; do echo "  $line"; done <<<"$validate_out" >&2
  say "WARNING: nightshift validate found problems in $etc_home (above). The daemon keeps running the last good version of an invalid file; fix them and run: nightshift validate"
fi

# ------------------------------------------------------------------ 5. polkit rule, command

if [[ -e $polkit_dst ]]; then
  say "$polkit_dst exists: kept as it is"
else
  mkdir -p "$(dirname "$polkit_dst")"
  sed 's/^\([[:space:]]*var UNITS = \)\[.*\];/\1[];  \/\/ the same list as restartUnits in protected\/policy.yaml/' \
    "$stage/deploy/50-nightshift-restart.rules" >"$polkit_dst.tmp"
  grep -q 'var UNITS = \[\];' "$polkit_dst.tmp" || die "could not set UNITS in the polkit rule"
  chmod 0644 "$polkit_dst.tmp"
  mv "$polkit_dst.tmp" "$polkit_dst"
  say "created $polkit_dst (grants nothing until its UNITS list names the units of policy.restartUnits)"
fi

mkdir -p "$(dirname "$wrapper")"
run_as="$ACCOUNT"
[[ $root_mode -eq 1 ]] && run_as=root
cat >"$wrapper.tmp" <<END
#!/bin/sh
# nightshift command wrapper, written by deploy/install.sh (replaced by each install).
# Runs the installed nightshift on the service's home and state, as the service's account
# ($run_as), so that the files it writes stay the daemon's. 'import' runs as the caller (root):
# it reads crontabs and writes job specs into /etc/nightshift, which only root may change.
set -e
cli=/opt/nightshift/dist/cli.js
run_as=$run_as
if [ "\$(id -u)" = 0 ]; then
  if [ "\$run_as" = root ] || [ "\${1:-}" = import ]; then
    exec /usr/bin/node "\$cli" --home /etc/nightshift --state /var/lib/nightshift "\$@"
  fi
  exec runuser -u "\$run_as" -- /usr/bin/node "\$cli" --home /etc/nightshift --state /var/lib/nightshift "\$@"
elif [ "\$(id -un)" = "\$run_as" ]; then
  exec /usr/bin/node "\$cli" --home /etc/nightshift --state /var/lib/nightshift "\$@"
fi
echo "nightshift: run it as root (sudo nightshift \$*): the state of the service belongs to \$run_as" >&2
exit 2
END
chmod 0755 "$wrapper.tmp"
mv "$wrapper.tmp" "$wrapper"
say "wrote $wrapper (commands run as $run_as, on /etc/nightshift and /var/lib/nightshift)"

# ------------------------------------------------------------------ 6. switch

have_systemd=0
[[ $real_install -eq 1 && -d /run/systemd/system ]] && have_systemd=1
was_active=0
if [[ $have_systemd -eq 1 ]] && systemctl is-active --quiet nightshift; then
  was_active=1
  say "stopping nightshift for the upgrade (it stops its running jobs first)"
  systemctl stop nightshift
  restart_old=1
fi
upgrade=0
if [[ -d $opt ]]; then
  upgrade=1
  old_version="$(sed -n 's/^version=//p' "$opt/INSTALLED" 2>/dev/null || true)"
  [[ -n $old_version ]] || old_version="$("$node" -p 'require(process.argv[1]).version' "$opt/package.json" 2>/dev/null || echo unknown)"
  # The database, as the old version left it: a newer version may migrate it, which the old one
  # then refuses. Only read from the state folder, never changed.
  if [[ -f $state/nightshift.db ]]; then
    mkdir -p "$backups"
    chmod 0700 "$backups"
    rm -f "$backups/nightshift.db" "$backups/nightshift.db-wal"
    cp -p "$state/nightshift.db" "$backups/nightshift.db"
    if [[ -f $state/nightshift.db-wal ]]; then cp -p "$state/nightshift.db-wal" "$backups/nightshift.db-wal"; fi
    echo "the database of nightshift $old_version, copied before the upgrade to $version on $(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$backups/README"
    say "copied the database of $old_version to $backups/ (for a roll back)"
  fi
  rm -rf "$opt.previous"
  mv "$opt" "$opt.previous"
fi
mv "$stage" "$opt"
stage=""
restart_old=0
if [[ $upgrade -eq 1 ]]; then
  say "/opt/nightshift is now $version; the previous one ($old_version) is /opt/nightshift.previous"
else
  say "/opt/nightshift is $version"
fi

mkdir -p "$unit_dir"
if [[ -f $unit_dst ]] && ! cmp -s "$unit_dst" "$opt/deploy/$unit_src"; then
  say "replacing $unit_dst with deploy/$unit_src (drop-ins in nightshift.service.d/ are kept)"
fi
cp "$opt/deploy/$unit_src" "$unit_dst.tmp"
chmod 0644 "$unit_dst.tmp"
mv "$unit_dst.tmp" "$unit_dst"
say "unit: $unit_dst ($mode_name)"
if [[ -d $unit_dst.d ]]; then
  say "drop-ins kept: $(find "$unit_dst.d" -mindepth 1 -maxdepth 1 -printf '%f ')"
fi

# ------------------------------------------------------------------ 7. start

if [[ $have_systemd -eq 1 ]]; then
  systemctl daemon-reload
  systemctl enable nightshift >/dev/null
  if [[ $upgrade -eq 1 || $was_active -eq 1 ]]; then
    systemctl restart nightshift || die "nightshift did not start: journalctl -u nightshift -n 50; to go back: deploy/README.md, 'Roll back'"
  else
    systemctl start nightshift || die "nightshift did not start: journalctl -u nightshift -n 50"
  fi
  say "nightshift is $(systemctl is-active nightshift)"
elif [[ $real_install -eq 1 ]]; then
  say "systemd is not running here (no /run/systemd/system): start the daemon yourself, or on the server: systemctl daemon-reload && systemctl enable --now nightshift"
else
  say "--root $root: systemctl not run; in that system: systemctl daemon-reload && systemctl enable --now nightshift"
fi

echo
echo "nightshift $version is installed ($mode_name)."
echo "Next: bring your cron jobs over (a preview; add --write to write the job specs), then look:"
if [[ $root_mode -eq 1 ]]; then
  echo "  crontab -l -u root | nightshift import crontab -"
  echo "  nightshift import crontab /etc/crontab --system"
  echo "  crontab -l -u USER | nightshift import crontab - --user USER"
else
  echo "  crontab -l -u USER | nightshift import crontab -"
fi
echo "  nightshift validate"
echo "  nightshift status"
