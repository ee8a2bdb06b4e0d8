#!/usr/bin/env bash
# Smoke test for a real Kubernetes control plane (etcd + kube-apiserver) built from Go modules
# by scripts/go-tools.sh. No Docker, no kubectl: curl with throwaway openssl certificates.
#
#   scripts/kube-smoke.sh            # builds the binaries first if they are not cached yet
#
# What it does:
#   1. throwaway certs: CA, serving cert for 127.0.0.1/localhost, admin client cert
#      (O=system:masters), a non-admin client cert, a service-account key pair;
#   2. etcd on loopback (temp data dir, --unsafe-no-fsync), waits for its /readyz;
#   3. kube-apiserver on 127.0.0.1 (RBAC, envtest-like flags), waits for /readyz;
#   4. checks with curl: /version, /api/v1/namespaces, create+read a namespace, anonymous
#      request rejected (401), non-admin identity forbidden (403);
#      if a kubectl is cached (scripts/go-tools.sh kubectl) or KUBECTL_BIN is set, also
#      `kubectl get namespaces` through a throwaway kubeconfig (never built here: optional);
#   5. stops both processes and deletes the temp dir on every exit path (trap).
#
# Env: ETCD_BIN / KUBE_APISERVER_BIN to use other binaries; KEEP_SMOKE_DIR=1 keeps the temp
# dir (certs, logs) for debugging; READY_TIMEOUT (seconds, default 180).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
READY_TIMEOUT="${READY_TIMEOUT:-180}"

fail() { echo "kube-smoke: FAIL: $*" >&2; exit 1; }
log() { echo "kube-smoke: $*" >&2; }

for c in curl openssl; do command -v "$c" >/dev/null 2>&1 || fail "'$c' is required"; done

KUBE_BIN_FROM_ENV="${KUBE_APISERVER_BIN:+1}"
ETCD_BIN="${ETCD_BIN:-$("$HERE/go-tools.sh" path etcd)}"
KUBE_APISERVER_BIN="${KUBE_APISERVER_BIN:-$("$HERE/go-tools.sh" path kube-apiserver)}"
[[ -x "$ETCD_BIN" ]] || fail "etcd binary not executable: $ETCD_BIN"
[[ -x "$KUBE_APISERVER_BIN" ]] || fail "kube-apiserver binary not executable: $KUBE_APISERVER_BIN"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/keyva-kube-smoke.XXXXXX")"
ETCD_PID=""
APISERVER_PID=""
CERTS_OK=0

stop_pid() { # <pid> <name>: TERM, wait up to 10 s, then KILL
  local pid="$1" name="$2" i
  [[ -n "$pid" ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name ($pid) did not stop after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$? f
  trap - EXIT INT TERM
  stop_pid "$APISERVER_PID" kube-apiserver
  stop_pid "$ETCD_PID" etcd
  if [[ $rc -ne 0 && $rc -ne 130 && $rc -ne 143 ]]; then
    local logs=(etcd.log kube-apiserver.log)
    [[ "$CERTS_OK" == 1 ]] || logs=(pki/openssl.log)
    for f in "${logs[@]}"; do
      if [[ -f "$WORK/$f" ]]; then
        echo "---- last lines of $f ----" >&2
        tail -30 "$WORK/$f" >&2
      fi
    done
  fi
  if [[ "${KEEP_SMOKE_DIR:-0}" == 1 ]]; then
    log "kept $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free loopback TCP port (nothing answers on it right now).
free_port() {
  local p i
  for i in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  fail "no free loopback port found"
}

# ------------------------------------------------------------------ certificates
log "generating throwaway certificates in $WORK/pki"
PKI="$WORK/pki"
mkdir -p "$PKI"
(
  cd "$PKI"
  exec >>openssl.log 2>&1
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 \
    -subj "/CN=keyva-smoke-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"

  # sign <name> <subject> <extensions>
  sign() {
    openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2"
    printf '%s\n' "$3" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out "$1.crt" -days 1 -sha256 -extfile "$1.ext"
  }
  sign apiserver "/CN=kube-apiserver" \
    "$(printf '%s\n' 'basicConstraints=CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' \
      'extendedKeyUsage=serverAuth' 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default')"
  sign admin "/O=system:masters/CN=keyva-smoke-admin" \
    "$(printf '%s\n' 'basicConstraints=CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' \
      'extendedKeyUsage=clientAuth')"
  sign user "/CN=keyva-smoke-nobody" \
    "$(printf '%s\n' 'basicConstraints=CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' \
      'extendedKeyUsage=clientAuth')"
  openssl genrsa -out sa.key 2048
  openssl rsa -in sa.key -pubout -out sa.pub
)
for f in ca.crt apiserver.crt apiserver.key admin.crt admin.key user.crt user.key sa.key sa.pub; do
  [[ -s "$PKI/$f" ]] || fail "openssl did not produce $f"
done
CERTS_OK=1

# ------------------------------------------------------------------ etcd
ETCD_CLIENT_PORT="$(free_port)"
ETCD_PEER_PORT="$(free_port)"
[[ "$ETCD_PEER_PORT" != "$ETCD_CLIENT_PORT" ]] || ETCD_PEER_PORT="$(free_port)"
ETCD_URL="http://127.0.0.1:$ETCD_CLIENT_PORT"
PEER_URL="http://127.0.0.1:$ETCD_PEER_PORT"

log "starting etcd ($("$ETCD_BIN" --version | head -1)) on $ETCD_URL"
"$ETCD_BIN" \
  --name smoke \
  --data-dir "$WORK/etcd-data" \
  --listen-client-urls "$ETCD_URL" \
  --advertise-client-urls "$ETCD_URL" \
  --listen-peer-urls "$PEER_URL" \
  --initial-advertise-peer-urls "$PEER_URL" \
  --initial-cluster "smoke=$PEER_URL" \
  --initial-cluster-state new \
  --unsafe-no-fsync \
  --log-level warn \
  >"$WORK/etcd.log" 2>&1 &
ETCD_PID=$!

deadline=$((SECONDS + 60))
until curl -sf "$ETCD_URL/readyz" >/dev/null 2>&1; do
  kill -0 "$ETCD_PID" 2>/dev/null || fail "etcd exited during startup"
  (( SECONDS < deadline )) || fail "etcd not ready after 60 s"
  sleep 0.2
done
log "etcd ready (pid $ETCD_PID)"

# ------------------------------------------------------------------ kube-apiserver
API_PORT="$(free_port)"
while [[ "$API_PORT" == "$ETCD_CLIENT_PORT" || "$API_PORT" == "$ETCD_PEER_PORT" ]]; do API_PORT="$(free_port)"; done
API="https://127.0.0.1:$API_PORT"
mkdir -p "$WORK/apiserver-certs"

log "starting kube-apiserver ($("$KUBE_APISERVER_BIN" --version | head -1)) on $API"
"$KUBE_APISERVER_BIN" \
  --etcd-servers "$ETCD_URL" \
  --bind-address 127.0.0.1 \
  --advertise-address 127.0.0.1 \
  --endpoint-reconciler-type none \
  --secure-port "$API_PORT" \
  --cert-dir "$WORK/apiserver-certs" \
  --tls-cert-file "$PKI/apiserver.crt" \
  --tls-private-key-file "$PKI/apiserver.key" \
  --client-ca-file "$PKI/ca.crt" \
  --authorization-mode RBAC \
  --service-account-issuer "$API" \
  --service-account-key-file "$PKI/sa.pub" \
  --service-account-signing-key-file "$PKI/sa.key" \
  --service-cluster-ip-range 10.0.0.0/24 \
  --disable-admission-plugins ServiceAccount \
  --allow-privileged=true \
  >"$WORK/kube-apiserver.log" 2>&1 &
APISERVER_PID=$!

ADMIN=(--cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key")
USER_CERT=(--cacert "$PKI/ca.crt" --cert "$PKI/user.crt" --key "$PKI/user.key")

start=$SECONDS
deadline=$((SECONDS + READY_TIMEOUT))
until [[ "$(curl -s "${ADMIN[@]}" "$API/readyz" 2>/dev/null || true)" == "ok" ]]; do
  kill -0 "$APISERVER_PID" 2>/dev/null || fail "kube-apiserver exited during startup"
  if (( SECONDS >= deadline )); then
    curl -s "${ADMIN[@]}" "$API/readyz?verbose" >&2 || true
    fail "kube-apiserver not ready after ${READY_TIMEOUT} s"
  fi
  sleep 0.5
done
log "kube-apiserver ready after $((SECONDS - start)) s (pid $APISERVER_PID)"

# ------------------------------------------------------------------ checks
PASSED=0
check() { log "ok: $*"; PASSED=$((PASSED + 1)); }

# /version reports the version the binary was built for.
version_json="$(curl -sf "${ADMIN[@]}" "$API/version")" || fail "GET /version failed"
git_version="$(printf '%s' "$version_json" | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p')"
[[ -n "$git_version" && "$git_version" != v0.0.0* ]] || fail "unexpected /version: $version_json"
expected="$("$HERE/go-tools.sh" versions | awk '$1 == "kube-apiserver" {print $2}')"
if [[ -z "$KUBE_BIN_FROM_ENV" && "$git_version" != "$expected" ]]; then
  fail "/version gitVersion=$git_version, expected $expected"
fi
check "GET /version -> gitVersion $git_version"

# The admin identity (O=system:masters) lists namespaces.
ns_json="$(curl -sf "${ADMIN[@]}" "$API/api/v1/namespaces")" || fail "GET /api/v1/namespaces failed"
for ns in default kube-system; do
  printf '%s' "$ns_json" | grep -q "\"name\": *\"$ns\"" || fail "namespace $ns missing: $ns_json"
done
check "GET /api/v1/namespaces lists default and kube-system"

# Write path through etcd: create a namespace and read it back.
code="$(curl -s -o "$WORK/create.json" -w '%{http_code}' "${ADMIN[@]}" -X POST \
  -H 'Content-Type: application/json' \
  -d '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"keyva-smoke"}}' \
  "$API/api/v1/namespaces")"
[[ "$code" == 201 ]] || fail "POST namespace returned HTTP $code: $(cat "$WORK/create.json")"
curl -sf "${ADMIN[@]}" "$API/api/v1/namespaces/keyva-smoke" | grep -q '"phase": *"Active"' \
  || fail "namespace keyva-smoke not readable/Active"
check "POST + GET namespace keyva-smoke (HTTP 201, Active)"

# Anonymous requests are rejected (401), or forbidden (403) where anonymous auth is on.
code="$(curl -s -o /dev/null -w '%{http_code}' --cacert "$PKI/ca.crt" "$API/api/v1/namespaces")"
[[ "$code" == 401 || "$code" == 403 ]] || fail "anonymous GET /api/v1/namespaces returned HTTP $code"
check "anonymous GET /api/v1/namespaces -> HTTP $code"

# A client-cert identity without RBAC bindings is authenticated but forbidden.
code="$(curl -s -o "$WORK/user.json" -w '%{http_code}' "${USER_CERT[@]}" "$API/api/v1/namespaces")"
[[ "$code" == 403 ]] || fail "non-admin GET /api/v1/namespaces returned HTTP $code (expected 403)"
grep -q 'keyva-smoke-nobody' "$WORK/user.json" || fail "403 body does not name the user: $(cat "$WORK/user.json")"
check "non-admin identity keyva-smoke-nobody -> HTTP 403 (RBAC enforced)"

# Optional: a real kubectl, only if one is already available.
KUBECTL_BIN="${KUBECTL_BIN:-$("$HERE/go-tools.sh" cached kubectl 2>/dev/null || true)}"
if [[ -n "$KUBECTL_BIN" && -x "$KUBECTL_BIN" ]]; then
  cat >"$WORK/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: smoke
  cluster: {server: "$API", certificate-authority: "$PKI/ca.crt"}
users:
- name: admin
  user: {client-certificate: "$PKI/admin.crt", client-key: "$PKI/admin.key"}
contexts:
- name: smoke
  context: {cluster: smoke, user: admin}
current-context: smoke
EOF
  "$KUBECTL_BIN" --kubeconfig "$WORK/kubeconfig" get namespaces -o name >"$WORK/kubectl.out" 2>&1 \
    || fail "kubectl get namespaces failed: $(cat "$WORK/kubectl.out")"
  grep -qx 'namespace/keyva-smoke' "$WORK/kubectl.out" || fail "kubectl output lacks keyva-smoke: $(cat "$WORK/kubectl.out")"
  check "kubectl get namespaces (kubectl $("$KUBECTL_BIN" version --client 2>/dev/null | awk '/Client Version/ {print $3}'))"
else
  log "skip: no cached kubectl (optional; build with scripts/go-tools.sh kubectl)"
fi

log "PASS ($PASSED checks; etcd $("$ETCD_BIN" --version | head -1 | awk '{print $3}'), kube-apiserver $git_version)"
