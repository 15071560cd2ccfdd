#!/usr/bin/env bash
# Run by deb_package_test.sh as root inside a throwaway root (an overlay of the machine's / in a
# private mount namespace, chrooted into): installs the package with dpkg, as apt-get would, and
# checks what the installation makes and what removing and purging keep.
# Usage: deb_install_check.sh PACKAGE.deb
set -euo pipefail
deb=${1:?usage: $0 PACKAGE.deb}
export DEBIAN_FRONTEND=noninteractive
failures=0
fail() {
  echo "FAIL (temporary root): $*" >&2
  failures=$((failures + 1))
}
ok() { echo "ok (temporary root): $*"; }
mode_of() { stat -c '%U:%G %a' "$1"; }

# A leftover from the machine's own state would hide what the package does.
if getent passwd steritrack >/dev/null || [[ -e /var/lib/steritrack || -e /etc/steritrack ]]; then
  echo "note: this machine already has a steritrack user, /var/lib/steritrack or /etc/steritrack;" \
    "the installation is checked on top of them"
fi

dpkg -i "$deb"
for f in /usr/bin/steritrackd /usr/bin/steritrack /usr/share/bash-completion/completions/steritrack \
  /etc/steritrack/steritrackd.toml /lib/systemd/system/steritrackd.service; do
  [[ -e $f ]] || fail "$f is not installed"
done
dpkg-query -W -f='${Conffiles}\n' steritrack | grep -q '^ /etc/steritrack/steritrackd.toml ' ||
  fail "dpkg does not hold /etc/steritrack/steritrackd.toml as a conffile"
entry=$(getent passwd steritrack) || fail "no steritrack user"
IFS=: read -r _ _ uid gid _ home shell <<<"$entry"
((uid < 1000)) || fail "steritrack is no system user (uid $uid)"
[[ $(getent group steritrack | cut -d: -f3) == "$gid" ]] || fail "steritrack's group is not steritrack"
[[ $home == /var/lib/steritrack && $shell == /usr/sbin/nologin ]] ||
  fail "steritrack's home/shell are $home $shell"
[[ $(mode_of /var/lib/steritrack) == "steritrack:steritrack 750" ]] ||
  fail "/var/lib/steritrack is $(mode_of /var/lib/steritrack), not steritrack:steritrack 750"
if command -v systemd-analyze >/dev/null 2>&1; then
  out=$(systemd-analyze verify /lib/systemd/system/steritrackd.service 2>&1) && [[ -z $out ]] ||
    fail "systemd-analyze verify of the installed unit: $out"
fi
ok "installed: files, conffile, system user, /var/lib/steritrack 0750"

# The first start, as the unit runs it (as steritrack, with the installed configuration; only the
# port is moved aside), makes the database; then the README's first admin token.
# (setpriv execs the server itself, so that SIGTERM reaches it as systemd's would.)
setpriv --reuid=steritrack --regid=steritrack --init-groups --reset-env \
  /usr/bin/steritrackd --config /etc/steritrack/steritrackd.toml --listen 127.0.0.1:0 \
  2>/tmp/server.log &
pid=$!
for _ in $(seq 300); do
  grep -q 'steritrackd listening' /tmp/server.log && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if grep -q 'steritrackd listening' /tmp/server.log; then
  kill -TERM "$pid"
  wait "$pid" || fail "the installed server did not exit 0 on SIGTERM"
else
  cat /tmp/server.log >&2
  kill "$pid" 2>/dev/null || true
  fail "the installed server did not start as steritrack with /etc/steritrack/steritrackd.toml"
fi
[[ $(stat -c %U /var/lib/steritrack/steritrack.db 2>/dev/null) == steritrack ]] ||
  fail "no database /var/lib/steritrack/steritrack.db owned by steritrack"
token=$(runuser -u steritrack -- /usr/bin/steritrackd token create \
  --db /var/lib/steritrack/steritrack.db --name admin.test --role admin) || true
[[ -n $token ]] || fail "steritrackd token create as steritrack printed no token"
ok "started as steritrack with the installed configuration; first admin token made"

# Installing again (configure of an installed version): a changed conffile is kept, the state
# directory's mode put back, the existing user reused.
echo '# changed here' >>/etc/steritrack/steritrackd.toml
chmod 0755 /var/lib/steritrack
dpkg -i "$deb"
grep -qx '# changed here' /etc/steritrack/steritrackd.toml || fail "reinstalling lost a changed conffile"
[[ $(mode_of /var/lib/steritrack) == "steritrack:steritrack 750" ]] ||
  fail "reinstalling left /var/lib/steritrack $(mode_of /var/lib/steritrack)"
[[ $(getent passwd steritrack) == "$entry" ]] || fail "reinstalling changed the steritrack user"
ok "reinstalled: conffile kept, state directory 0750 again, same user"

# Remove: the binaries go, configuration and data stay.
dpkg -r steritrack
[[ ! -e /usr/bin/steritrackd && ! -e /lib/systemd/system/steritrackd.service ]] ||
  fail "removing left the binaries or the unit"
[[ -f /etc/steritrack/steritrackd.toml && -f /var/lib/steritrack/steritrack.db ]] ||
  fail "removing took the configuration or the database"
ok "removed: configuration and database kept"

# Purge: the configuration goes; the database and the user stay.
dpkg --purge steritrack
[[ ! -e /etc/steritrack ]] || fail "purging left /etc/steritrack: $(ls -A /etc/steritrack)"
[[ -f /var/lib/steritrack/steritrack.db ]] || fail "purging took the database"
getent passwd steritrack >/dev/null || fail "purging removed the steritrack user"
ok "purged: configuration gone, database and user kept"

# Purge with the opt-in: the data go too.
dpkg -i "$deb"
STERITRACK_PURGE_DATA=yes dpkg --purge steritrack
[[ ! -e /var/lib/steritrack ]] || fail "purging with STERITRACK_PURGE_DATA=yes left /var/lib/steritrack"
ok "purged with STERITRACK_PURGE_DATA=yes: data gone"

((failures == 0))
