#!/usr/bin/env bash
# The Debian package (issue 10): builds it with `cpack -G DEB` from BUILD_DIR's CPackConfig.cmake
# (the binaries ctest runs against, stripped on the way) and checks, with dpkg-deb, its name,
# version, architecture and dependencies, its control files, every file and mode it ships, the
# systemd unit's hardening, and that what it ships works: the extracted server starts with the
# shipped configuration and the completion loads. Where the machine allows (root, mount
# namespaces, overlayfs), it then installs the package for real with dpkg into a temporary root:
# an overlay of this machine's / in a private mount namespace, so the real system is never
# touched; there it checks the system user, the state directory, a first start as steritrack,
# the first admin token, reinstalling, removing and purging (the database is kept unless
# STERITRACK_PURGE_DATA=yes).
# Usage: deb_package_test.sh BUILD_DIR VERSION
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR VERSION}
version=${2:?usage: $0 BUILD_DIR VERSION}

work=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
ok() { echo "ok: $*"; }

# --- Build -------------------------------------------------------------------------------------
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/pkg" >"$work/cpack.log" 2>&1 || {
  cat "$work/cpack.log" >&2
  echo "FAIL: cpack -G DEB failed" >&2
  exit 1
}
deb=$work/pkg/steritrack_${version}_amd64.deb
if [[ ! -f $deb ]]; then
  ls "$work/pkg" >&2
  echo "FAIL: cpack made no steritrack_${version}_amd64.deb" >&2
  exit 1
fi
ok "cpack -G DEB built $(basename "$deb")"

# --- Metadata ----------------------------------------------------------------------------------
dpkg-deb --info "$deb"
field() { dpkg-deb --field "$deb" "$1"; }
[[ $(field Package) == steritrack ]] || fail "Package is '$(field Package)', not steritrack"
[[ $(field Version) == "$version" ]] || fail "Version is '$(field Version)', not $version"
[[ $(field Architecture) == amd64 ]] || fail "Architecture is '$(field Architecture)', not amd64"
[[ -n $(field Maintainer) && -n $(field Description) ]] || fail "no Maintainer or Description"
# The Debian 12 runtime libraries, as dpkg-shlibdeps names them, and adduser for postinst.
depends=", $(field Depends),"
for dep in libgrpc++1.51 libgrpc29 libprotobuf32 libsqlite3-0 libssl3 libabsl20220623 \
  libspdlog1.10-fmt9 libtomlplusplus3 libzint2.11 libstdc++6 libc6 adduser; do
  [[ $depends == *", $dep "* || $depends == *", $dep,"* ]] || fail "Depends lacks $dep: $depends"
done
# -dev packages are for building, never for running.
[[ $depends != *-dev* ]] || fail "Depends names a -dev package: $depends"
ok "Package, Version, Architecture and Depends"

dpkg-deb --control "$deb" "$work/control"
[[ $(cat "$work/control/conffiles") == /etc/steritrack/steritrackd.toml ]] ||
  fail "conffiles is '$(cat "$work/control/conffiles")', not /etc/steritrack/steritrackd.toml"
for script in postinst prerm postrm; do
  if [[ ! -x $work/control/$script ]]; then
    fail "no executable $script in the control archive"
    continue
  fi
  sh -n "$work/control/$script" || fail "$script: sh syntax error"
  # systemctl only where systemd runs (never in a container or chroot).
  if grep -q 'systemctl\|deb-systemd-invoke' "$work/control/$script" &&
    ! grep -q '\[ -d /run/systemd/system \]' "$work/control/$script"; then
    fail "$script calls systemctl without checking for /run/systemd/system"
  fi
done
grep -q 'adduser --system' "$work/control/postinst" || fail "postinst makes no system user"
grep -q 'STERITRACK_PURGE_DATA' "$work/control/postrm" || fail "postrm has no data opt-in"
ok "control files: conffiles, postinst, prerm, postrm"

# --- Contents ----------------------------------------------------------------------------------
dpkg-deb --contents "$deb" | tee "$work/contents"
# mode, owner, path of every file that must be there.
expected=(
  "-rwxr-xr-x root/root ./usr/bin/steritrackd"
  "-rwxr-xr-x root/root ./usr/bin/steritrack"
  "-rw-r--r-- root/root ./usr/share/bash-completion/completions/steritrack"
  "-rw-r--r-- root/root ./etc/steritrack/steritrackd.toml"
  "-rw-r--r-- root/root ./lib/systemd/system/steritrackd.service"
  "-rw-r--r-- root/root ./usr/share/doc/steritrack/README.md"
)
listed=$(awk '{print $1, $2, $6}' "$work/contents")
for line in "${expected[@]}"; do
  grep -qxF -- "$line" <<<"$listed" || fail "contents lack '$line'"
done
# Nothing under /usr/local, and no /var: dpkg must not own the database's directory (postinst makes
# it), or removing the package could take it along.
if grep -E ' \./(usr/local|var)/' "$work/contents"; then fail "files under /usr/local or /var"; fi
ok "contents and modes"

# --- What it ships -----------------------------------------------------------------------------
root=$work/root
dpkg-deb -x "$deb" "$root"
for bin in steritrackd steritrack; do
  if readelf -S "$root/usr/bin/$bin" | grep -qE '\.debug_info|\.symtab'; then
    fail "/usr/bin/$bin is not stripped"
  fi
done
ok "binaries stripped"

unit=$root/lib/systemd/system/steritrackd.service
for line in "User=steritrack" "Group=steritrack" \
  "ExecStart=/usr/bin/steritrackd --config /etc/steritrack/steritrackd.toml" \
  "StateDirectory=steritrack" "StateDirectoryMode=0750" "NoNewPrivileges=true" \
  "ProtectSystem=strict" "ProtectHome=true" "PrivateTmp=true" "PrivateDevices=true" \
  "ProtectKernelTunables=true" "ProtectKernelModules=true" "ProtectKernelLogs=true" \
  "ProtectControlGroups=true" "CapabilityBoundingSet=" \
  "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" "RestrictSUIDSGID=true" \
  "SystemCallFilter=@system-service" "SystemCallFilter=setpriority" "LimitNOFILE=16384" "LimitNICE=-10" \
  "WantedBy=multi-user.target"; do
  grep -qxF -- "$line" "$unit" || fail "the unit lacks '$line'"
done
# Only the state directory is writable: no other path opened up.
if grep -E '^(ReadWritePaths|LogsDirectory|CacheDirectory|RuntimeDirectory|ProtectSystem=(true|full|false)|ProtectHome=(false|read-only))' "$unit"; then
  fail "the unit makes more than its state directory writable"
fi
# systemd's own reading of the unit (it wants ExecStart's binary: the extracted one stands in).
if command -v systemd-analyze >/dev/null 2>&1; then
  mkdir "$work/unit"
  sed "s|^ExecStart=/usr/bin/steritrackd|ExecStart=$root/usr/bin/steritrackd|" "$unit" \
    >"$work/unit/steritrackd.service"
  if ! systemd-analyze verify "$work/unit/steritrackd.service" >"$work/verify.log" 2>&1 ||
    [[ -s $work/verify.log ]]; then
    cat "$work/verify.log" >&2
    fail "systemd-analyze verify finds fault with the unit"
  else
    ok "systemd-analyze verify: no warnings"
  fi
fi
ok "the unit's hardening"

# The shipped configuration: the documented defaults, every key (commented or not) known to this
# steritrackd, and it starts the extracted server (database and address moved aside by flags).
toml=$root/etc/steritrack/steritrackd.toml
grep -qx 'db = "/var/lib/steritrack/steritrack.db"' "$toml" || fail "config: db is not /var/lib/steritrack/steritrack.db"
grep -qx 'listen = "127.0.0.1:50051"' "$toml" || fail "config: listen is not 127.0.0.1:50051"
known=$("$root/usr/bin/steritrackd" config-keys | sed -n 's/^| `\([a-z_]*\)` |.*/\1/p')
[[ -n $known ]] || fail "the extracted steritrackd config-keys printed no keys"
for key in $(sed -n 's/^#\{0,1\} \{0,1\}\([a-z_]*\) = .*/\1/p' "$toml"); do
  grep -qx "$key" <<<"$known" || fail "config: '$key' is no key of steritrackd"
done
"$root/usr/bin/steritrackd" --config "$toml" --db "$work/steritrack.db" --listen 127.0.0.1:0 \
  2>"$work/server.log" &
server_pid=$!
for _ in $(seq 300); do
  grep -q 'steritrackd listening' "$work/server.log" && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if grep -q 'steritrackd listening' "$work/server.log"; then
  kill -TERM "$server_pid"
  wait "$server_pid" || fail "the extracted server did not exit 0 on SIGTERM"
  ok "the extracted server starts with the shipped configuration"
else
  cat "$work/server.log" >&2
  fail "the extracted server did not start with the shipped configuration"
fi
server_pid=

# The completion loads and completes the top-level commands.
completion=$root/usr/share/bash-completion/completions/steritrack
reply=$(bash -c 'source "$1"; complete -p steritrack >/dev/null || exit 1
  COMP_WORDS=(steritrack adm); COMP_CWORD=1; _steritrack; echo "${COMPREPLY[*]}"' _ "$completion") ||
  fail "the completion does not register for steritrack"
[[ $reply == admin ]] || fail "the completion completes 'adm' to '$reply', not admin"
ok "bash completion"

# --- A real installation into a temporary root ----------------------------------------------------
# An overlay of / (its upper layer on a tmpfs) in a private mount namespace, chrooted into: dpkg,
# the maintainer scripts and adduser run for real, and everything vanishes with the namespace.
install_test() {
  set -euo pipefail
  local ovl=$work/ovl
  mkdir -p "$ovl"
  mount -t tmpfs tmpfs "$ovl"
  mkdir "$ovl/upper" "$ovl/work" "$ovl/root"
  cp "$deb" "$ovl/upper/steritrack.deb"
  cp "$(dirname "$0")/deb_install_check.sh" "$ovl/upper/deb_install_check.sh"
  mount -t overlay overlay -o "lowerdir=/,upperdir=$ovl/upper,workdir=$ovl/work" "$ovl/root"
  mount --rbind /dev "$ovl/root/dev"
  mount -t proc proc "$ovl/root/proc"
  mount -t tmpfs tmpfs "$ovl/root/tmp"
  mount -t tmpfs tmpfs "$ovl/root/run"
  chroot "$ovl/root" /bin/bash /deb_install_check.sh /steritrack.deb
}
if [[ $(id -u) -ne 0 ]]; then
  echo "note: not root: the installation into a temporary root is not tried"
elif ! unshare --mount --propagation private true 2>/dev/null; then
  echo "note: no mount namespaces here: the installation into a temporary root is not tried"
elif ! mkdir "$work/probe" || ! unshare --mount --propagation private bash -c \
  "mount -t tmpfs tmpfs '$work/probe' && mkdir '$work/probe/u' '$work/probe/w' '$work/probe/m' &&
   mount -t overlay overlay -o 'lowerdir=/,upperdir=$work/probe/u,workdir=$work/probe/w' '$work/probe/m'" \
  2>/dev/null; then
  echo "note: no overlayfs of / here: the installation into a temporary root is not tried"
else
  export work deb
  if unshare --mount --propagation private bash -c "$(declare -f install_test); install_test" "$0"; then
    ok "installed, started, reinstalled, removed and purged in a temporary root"
  else
    fail "the installation into a temporary root"
  fi
fi

if ((failures > 0)); then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "the Debian package is complete"
