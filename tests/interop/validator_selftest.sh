#!/usr/bin/env bash
# Issue 14: proves validate_exports.js can fail. The good fixtures must pass (exit 0); each bad
# fixture must fail (exit 1) with an INVALID line naming the bad field; usage, parse and NDJSON
# framing errors must exit 2. $1: the tools directory deploy/test.sh fills (build/tools).
set -uo pipefail
tools=${1:?usage: validator_selftest.sh TOOLS_DIR}
here=$(cd "$(dirname "$0")" && pwd)
validator=$here/validate_exports.js
fixtures=$here/fixtures
failures=0
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# expect NAME EXIT_CODE PATTERN... -- ARGS...: runs the validator, checks its exit code and that
# every extended regex PATTERN matches its output (stdout and stderr).
expect() {
  local name=$1 want=$2
  shift 2
  local patterns=()
  while [[ $1 != -- ]]; do patterns+=("$1"); shift; done
  shift
  local out rc
  out=$(node "$validator" --tools "$tools" "$@" 2>&1)
  rc=$?
  if [[ $rc != "$want" ]]; then
    echo "FAIL $name: exit $rc, expected $want"; echo "$out" | sed 's/^/    /'; failures=$((failures + 1))
    return
  fi
  local p
  for p in "${patterns[@]}"; do
    if ! grep -Eq -- "$p" <<<"$out"; then
      echo "FAIL $name: no line matching /$p/"; echo "$out" | sed 's/^/    /'; failures=$((failures + 1))
      return
    fi
  done
  echo "ok   $name"
}

expect good 0 '^OK fhir-ndjson .*fhir_good\.ndjson \(2 bundles\)$' '^OK epcis .*epcis_good\.json \(2 events\)$' -- \
  --fhir-ndjson "$fixtures/fhir_good.ndjson" --epcis "$fixtures/epcis_good.json"
expect fhir_bad 1 \
  '^INVALID fhir-ndjson .*fhir_bad\.ndjson: line 1 entry\[1\]\.resource \(Device\)\.status: .*allowed values' \
  "^INVALID fhir-ndjson .*fhir_bad\.ndjson: line 2 entry\[0\]\.resource \(Procedure\): .*required property 'subject'" -- \
  --fhir-ndjson "$fixtures/fhir_bad.ndjson"
expect epcis_bad 1 \
  "^INVALID epcis .*epcis_bad\.json: epcisBody\.eventList\[0\] \(ObjectEvent\): .*required property 'eventTimeZoneOffset'" \
  '^INVALID epcis .*epcis_bad\.json: epcisBody\.eventList\[1\] \(ObjectEvent\)/action: .*allowed values' -- \
  --epcis "$fixtures/epcis_bad.json"

# One Bundle on its own (--fhir-bundle), good and bad.
head -n 1 "$fixtures/fhir_good.ndjson" >"$scratch/bundle_good.json"
sed -n 1p "$fixtures/fhir_bad.ndjson" >"$scratch/bundle_bad.json"
expect bundle_good 0 '^OK fhir-bundle .*bundle_good\.json \(1 bundles\)$' -- --fhir-bundle "$scratch/bundle_good.json"
expect bundle_bad 1 '^INVALID fhir-bundle .*bundle_bad\.json: entry\[1\]\.resource \(Device\)\.status' -- \
  --fhir-bundle "$scratch/bundle_bad.json"
# A period without treatments is an empty NDJSON file: valid, zero bundles.
: >"$scratch/empty.ndjson"
expect empty_ndjson 0 '^OK fhir-ndjson .*empty\.ndjson \(0 bundles\)$' -- \
  --fhir-ndjson "$scratch/empty.ndjson"
# A valid file does not hide an invalid one given with it.
expect mixed 1 '^OK epcis ' '^INVALID fhir-ndjson ' -- \
  --epcis "$fixtures/epcis_good.json" --fhir-ndjson "$fixtures/fhir_bad.ndjson"

# Exit 2: usage, unreadable file, JSON syntax (file and line named), empty NDJSON line.
{ head -n 1 "$fixtures/fhir_good.ndjson"; echo; tail -n 1 "$fixtures/fhir_good.ndjson"; } >"$scratch/gap.ndjson"
{ head -n 1 "$fixtures/fhir_good.ndjson"; echo '{"resourceType": "Bundle",'; } >"$scratch/broken.ndjson"
printf '{\n  "type": "EPCISDocument",\n  "schemaVersion": 2.0,,\n}\n' >"$scratch/broken.json"
expect usage 2 'usage:' -- --bogus
expect no_files 2 'nothing to validate' --
expect unreadable 2 'missing\.json: cannot read' -- --epcis "$scratch/missing.json"
expect empty_line 2 'gap\.ndjson:2: empty line' -- --fhir-ndjson "$scratch/gap.ndjson"
expect ndjson_syntax 2 'broken\.ndjson:2: JSON parse error' -- --fhir-ndjson "$scratch/broken.ndjson"
expect json_syntax 2 'broken\.json:3: JSON parse error' -- --epcis "$scratch/broken.json"

if ((failures)); then
  echo "validator_selftest: $failures failure(s)"
  exit 1
fi
echo "validator_selftest: all passed"
