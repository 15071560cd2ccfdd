#!/usr/bin/env bash
# Makes the clinic's TLS material with the openssl command-line tool: a clinic CA, a server
# certificate for steritrackd and client certificates for people and systems (mutual TLS).
# Keys are ECDSA P-256.
set -euo pipefail

readonly ROLES="nurse sterile_processing manager integrator admin"

usage() {
  cat <<'EOF'
Usage: deploy/make-certs.sh DIR [--san NAME]... [--client NAME:ROLE[@SITE]]... [--days N] [--force]

Makes, in DIR (created if missing; keys are mode 0600):
  ca.pem, ca.key                 the clinic CA (kept if it exists, unless --force)
  server.pem, server.key         steritrackd's certificate, signed by the CA (serverAuth)
  client-NAME.pem, client-NAME.key
                                 a client certificate, CN=NAME and OU=ROLE (clientAuth); for
                                 a site of a clinic chain OU=ROLE@SITE

  --san NAME          a subject alternative name of the server certificate, as openssl writes it:
                      DNS:steritrack.clinic.local or IP:192.168.1.20 (repeatable; default:
                      DNS:localhost and IP:127.0.0.1). Clients must reach the server by one of them.
  --client NAME:ROLE  a client certificate (repeatable); NAME is who it is (e.g. nurse.kim), ROLE
                      one of: nurse, sterile_processing, manager, integrator, admin
  --days N            validity of the server and client certificates (default 825; the CA: 3650)
  --force             replace an existing CA and client certificates (every certificate the old
                      CA signed stops working)

The server certificate is made again on every run (so new --san names take effect); a client
certificate that exists is kept. Then, for example:
  steritrackd --listen 0.0.0.0:50051 --tls-cert DIR/server.pem --tls-key DIR/server.key \
      --client-ca DIR/ca.pem
  steritrack --server steritrack.clinic.local:50051 --ca DIR/ca.pem \
      --cert DIR/client-nurse.kim.pem --key DIR/client-nurse.kim.key treatment show 1

Example:
  deploy/make-certs.sh /etc/steritrack/tls --san DNS:steritrack.clinic.local \
      --client nurse.kim:nurse --client spd.lee:sterile_processing
EOF
}

fail() {
  echo "make-certs.sh: $*" >&2
  exit 2
}

dir=""
sans=()
clients=()
days=825
force=0
while (($# > 0)); do
  case $1 in
    -h | --help)
      usage
      exit 0
      ;;
    --san)
      (($# >= 2)) || fail "--san needs a value, e.g. DNS:steritrack.clinic.local"
      [[ $2 =~ ^(DNS|IP):[^,[:space:]]+$ ]] || fail "--san $2: write DNS:NAME or IP:ADDRESS"
      sans+=("$2")
      shift 2
      ;;
    --client)
      (($# >= 2)) || fail "--client needs NAME:ROLE, e.g. nurse.kim:nurse"
      clients+=("$2")
      shift 2
      ;;
    --days)
      (($# >= 2)) && [[ $2 =~ ^[1-9][0-9]*$ ]] || fail "--days needs a positive number"
      days=$2
      shift 2
      ;;
    --force)
      force=1
      shift
      ;;
    -*) fail "unknown option $1 (see --help)" ;;
    *)
      [[ -z $dir ]] || fail "one directory only (got $dir and $1)"
      dir=$1
      shift
      ;;
  esac
done
[[ -n $dir ]] || {
  usage >&2
  exit 2
}
command -v openssl >/dev/null || fail "the openssl command is missing (Debian: apt-get install openssl)"
((${#sans[@]} > 0)) || sans=(DNS:localhost IP:127.0.0.1)

# Checked before anything is written: a bad --client leaves the directory as it was.
for spec in "${clients[@]}"; do
  [[ $spec == *:* ]] || fail "--client $spec: write NAME:ROLE, e.g. nurse.kim:nurse"
  name=${spec%%:*}
  role=${spec#*:}
  [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9._@-]*$ ]] ||
    fail "--client $spec: NAME may hold letters, digits and . _ @ - only"
  # ROLE@SITE: a certificate for one site of a clinic chain (OU=ROLE@SITE).
  if [[ $role == *@* ]]; then
    [[ ${role#*@} =~ ^[a-z0-9][a-z0-9_]{0,31}$ ]] ||
      fail "--client $spec: SITE may hold a-z, 0-9 and _ only (1 to 32, not _ first)"
    role=${role%%@*}
  fi
  [[ " $ROLES " == *" $role "* ]] || fail "--client $spec: unknown role '$role' (roles: ${ROLES// /, })"
done

mkdir -p "$dir"
umask 077 # keys are born 0600; certificates are made readable below
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Runs openssl quietly; on failure shows what it said and stops.
ossl() {
  openssl "$@" 2>"$work/err" || {
    cat "$work/err" >&2
    exit 1
  }
}

# A new ECDSA P-256 key in $1 and a signing request for subject $2 in $work/req.csr.
new_request() {
  ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$2" \
    -keyout "$1" -out "$work/req.csr"
  chmod 0600 "$1"
}

# Signs $work/req.csr with the CA into $1 with the extensions in $2.
sign() {
  printf '%s\n' "$2" >"$work/ext.cnf"
  ossl x509 -req -in "$work/req.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -CAserial "$work/ca.srl" -days "$days" -sha256 \
    -extfile "$work/ext.cnf" -out "$1"
  chmod 0644 "$1"
}

if [[ -f $dir/ca.pem && -f $dir/ca.key && $force -eq 0 ]]; then
  echo "make-certs.sh: keeping the CA in $dir (ca.pem, ca.key; --force replaces it)"
else
  ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -days 3650 \
    -subj "/O=steritrack clinic/CN=steritrack clinic CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem"
  chmod 0600 "$dir/ca.key"
  chmod 0644 "$dir/ca.pem"
  echo "make-certs.sh: made the clinic CA: $dir/ca.pem (keep $dir/ca.key safe)"
fi

san_list=$(
  IFS=,
  echo "${sans[*]}"
)
new_request "$dir/server.key" "/O=steritrack clinic/CN=${sans[0]#*:}"
sign "$dir/server.pem" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$san_list"
echo "make-certs.sh: made the server certificate: $dir/server.pem ($san_list)"

for spec in "${clients[@]}"; do
  name=${spec%%:*}
  role=${spec#*:}
  if [[ -f $dir/client-$name.pem && -f $dir/client-$name.key && $force -eq 0 ]]; then
    echo "make-certs.sh: keeping $dir/client-$name.pem"
    continue
  fi
  new_request "$dir/client-$name.key" "/O=steritrack clinic/OU=$role/CN=$name"
  sign "$dir/client-$name.pem" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
  echo "make-certs.sh: made $dir/client-$name.pem (CN=$name, OU=$role)"
done
