#!/usr/bin/env bash
# Installs the Debian 12 packages steritrack needs to build (and, with "test", to run its tests).
# Idempotent and quiet: when everything is already installed it does not touch apt at all.
set -euo pipefail

# What building and running steritrack needs.
packages=(
  cmake ninja-build g++ pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libsqlite3-dev libssl-dev libspdlog-dev libcli11-dev libtomlplusplus-dev libzint-dev
  # /metrics is served with cpp-httplib (its header and Debian's compiled part).
  libcpp-httplib-dev
  # steritrackd allocates with jemalloc (CMakeLists.txt: STERITRACK_JEMALLOC).
  libjemalloc-dev
  # The PostgreSQL backend for clinic chains (issue 13) talks to the server with libpqxx.
  libpqxx-dev
  # deploy/make-certs.sh makes the clinic's CA and certificates with the openssl command.
  openssl
  # cpack -G DEB (the Debian package) takes its library dependencies from dpkg-shlibdeps.
  dpkg-dev
)
# What the test suite needs besides ("install-deps.sh test", as deploy/test.sh calls it).
if [[ ${1:-} == test ]]; then
  packages+=(libgtest-dev libgmock-dev libbenchmark-dev tmux python3 sqlite3 clang-format)
  # Headless Chromium renders the HTML compliance report in tests/e2e/test_report.py.
  packages+=(chromium)
  # The integration example and its test (deploy/examples/python, tests/e2e/test_python_client.py);
  # its stubs come from protoc and grpc_python_plugin above.
  packages+=(python3-grpcio python3-protobuf)
  # The Debian package's test (tests/deploy/deb_package_test.sh): readelf checks the binaries are
  # stripped, systemd-analyze reads the unit, and the installation into a throwaway overlay of /
  # runs dpkg, adduser and mount for real.
  packages+=(binutils systemd adduser mount)
  # npm fetches buf for the API checks; a machine that already has Node.js keeps its own.
  command -v npm >/dev/null 2>&1 || packages+=(npm)
  # promtool checks the /metrics exposition in tests/e2e/test_metrics.py (about 96 MB installed,
  # less than chromium). The package also brings a Prometheus server unit: on a machine with
  # systemd, `systemctl disable --now prometheus` if you do not want it running.
  packages+=(prometheus)
  # The storage conformance suite runs against a real PostgreSQL 15 too: a throwaway cluster in a
  # temporary folder (tests/pg/cluster.sh), started and stopped by ctest.
  packages+=(postgresql)
fi
# The fuzzing run (tests/fuzz/run.sh, "install-deps.sh fuzz"): clang with libFuzzer. The normal
# suite replays the seeds without it.
if [[ ${1:-} == fuzz ]]; then
  packages+=(clang-14 libclang-rt-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "steritrack: missing Debian packages: ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "steritrack: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
