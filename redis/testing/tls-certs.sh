#!/usr/bin/env bash
# Makes a throwaway PKI for the TLS tests in DIR: a certificate authority (ca.pem), a server
# certificate for 127.0.0.1 signed by it (server.pem, server.key; IP subject alternative name,
# not a CA, valid one day) and a client certificate signed by it (client.pem, client.key; for
# servers started with --tls-auth-clients yes). Used by the Rust, Python and Node Redis tests,
# so every binding's TLS test runs against the same kind of server. Needs the `openssl` tool.
# Usage: redis/testing/tls-certs.sh DIR
set -euo pipefail
dir=${1:?usage: tls-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=ratewall-test-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr 2>/dev/null
printf '%s\n' 'subjectAltName=IP:127.0.0.1' 'basicConstraints=CA:FALSE' \
    'keyUsage=digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' >server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
    -extfile server.ext -out server.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=ratewall-test-client -keyout client.key \
    -out client.csr 2>/dev/null
printf '%s\n' 'basicConstraints=CA:FALSE' 'keyUsage=digitalSignature,keyEncipherment' \
    'extendedKeyUsage=clientAuth' >client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
    -extfile client.ext -out client.pem 2>/dev/null
rm -f server.csr server.ext client.csr client.ext ca.srl
