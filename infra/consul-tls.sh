#!/usr/bin/env bash
# The stack's TLS material, made with openssl on the machine running `pulumi up` (no TLS provider can be had
# here): on VMs Consul's RPC (infra/consul-tls.ts) and the syslog stream to the collector (infra/syslog-tls.ts),
# and the public certificate (infra/public-tls.ts). Prints a certificate and its private key, PEM, on stdout;
# nothing is left on disk.
#   consul-tls.sh ca                 a CA (EC P-256, 10 years; CN from the environment): run once, kept as a secret
#   consul-tls.sh agent              a certificate signed by CA_CERT/CA_KEY (environment), for CN and SANS
#                                    (environment, openssl's subjectAltName syntax), 825 days, for the extended
#                                    key usages EKU (default serverAuth,clientAuth: Consul's RPC verifies both ways)
set -euo pipefail
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
umask 077
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
case "${1:-}" in
  ca)
    key "$work/ca.key"
    openssl req -x509 -new -key "$work/ca.key" -sha256 -days 3650 -subj "/CN=${CN:-consul-nginx-pulumi Consul CA}" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$work/ca.pem"
    cat "$work/ca.pem" "$work/ca.key"
    ;;
  agent)
    : "${CA_CERT:?CA_CERT is not set}" "${CA_KEY:?CA_KEY is not set}" "${CN:?CN is not set}" "${SANS:?SANS is not set}"
    printf '%s\n' "$CA_CERT" >"$work/ca.pem"
    printf '%s\n' "$CA_KEY" >"$work/ca.key"
    key "$work/agent.key"
    openssl req -new -key "$work/agent.key" -subj "/CN=$CN" -out "$work/agent.csr"
    printf 'subjectAltName=%s\nextendedKeyUsage=%s\nkeyUsage=critical,digitalSignature\n' "$SANS" "${EKU:-serverAuth,clientAuth}" >"$work/ext"
    openssl x509 -req -in "$work/agent.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -sha256 -days 825 \
      -extfile "$work/ext" -out "$work/agent.pem" 2>/dev/null
    cat "$work/agent.pem" "$work/agent.key"
    ;;
  *)
    echo "usage: consul-tls.sh ca | agent (with CA_CERT, CA_KEY, CN and SANS set)" >&2
    exit 2
    ;;
esac
