#!/bin/sh
# Test certificates for the TLS tests, made with the openssl CLI into DIR:
#   ca.pem/ca.key          the test CA (ECDSA P-256)
#   server.pem/.key        localhost, 127.0.0.1 (the listener's default cert)
#   server-rsa.pem/.key    the same names with an RSA-2048 key
#   sni.pem/.key           api.test and *.wild.test (an sni entry)
#   client.pem/.key        a client signed by the CA (CN=alice)
#   revoked.pem/.key       a client signed by the CA, then revoked (CN=mallory)
#   untrusted.pem/.key     a client signed by another CA
#   deep.pem/.key          a client signed by an intermediate CA (deep.pem holds
#                          the leaf then the intermediate)
#   crl.pem                the CA's CRL (revoking revoked.pem)
# None are committed: tests call this at run time.
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"
q() { "$@" >/dev/null 2>&1; }

key() {
    case "$1" in
    *-rsa.key) q openssl genrsa -out "$1" 2048 ;;
    *) q openssl ecparam -name prime256v1 -genkey -noout -out "$1" ;;
    esac
}

key ca.key
q openssl req -x509 -new -key ca.key -sha256 -days 30 -subj "/CN=saltare test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.pem
key other.key
q openssl req -x509 -new -key other.key -sha256 -days 30 -subj "/CN=other CA" \
    -addext "basicConstraints=critical,CA:TRUE" -out other.pem

mkdir -p db
: > db/index.txt
echo 1000 > db/serial
echo 1000 > db/crlnumber
cat > ca.cnf <<CNF
[ca]
default_ca = test
[test]
database = db/index.txt
serial = db/serial
crlnumber = db/crlnumber
new_certs_dir = db
certificate = ca.pem
private_key = ca.key
default_md = sha256
default_days = 30
default_crl_days = 30
policy = any
copy_extensions = copy
unique_subject = no
[any]
commonName = supplied
organizationName = optional
CNF

# sign NAME SUBJECT EXTENSIONS [CA]
sign() {
    key "$1.key"
    q openssl req -new -key "$1.key" -subj "$2" -addext "$3" -out "$1.csr"
    if [ "${4:-ca}" = other ]; then
        q openssl x509 -req -in "$1.csr" -CA other.pem -CAkey other.key -CAcreateserial \
            -days 30 -copy_extensions copy -out "$1.pem"
    else
        q openssl ca -batch -config ca.cnf -notext -in "$1.csr" -out "$1.pem"
    fi
}

sign server "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1"
sign server-rsa "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1"
sign sni "/CN=api.test" "subjectAltName=DNS:api.test,DNS:*.wild.test"
sign client "/CN=alice/O=saltare tests" "extendedKeyUsage=clientAuth"
sign revoked "/CN=mallory" "extendedKeyUsage=clientAuth"
sign untrusted "/CN=eve" "extendedKeyUsage=clientAuth" other
# An intermediate CA under the test CA, and a client it signs.
key inter.key
q openssl req -new -key inter.key -subj "/CN=saltare test intermediate" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out inter.csr
q openssl ca -batch -config ca.cnf -notext -in inter.csr -out inter.pem
key deep.key
q openssl req -new -key deep.key -subj "/CN=dave" -addext "extendedKeyUsage=clientAuth" \
    -out deep.csr
q openssl x509 -req -in deep.csr -CA inter.pem -CAkey inter.key -CAcreateserial -days 30 \
    -copy_extensions copy -out deep-leaf.pem
cat deep-leaf.pem inter.pem > deep.pem
q openssl ca -config ca.cnf -revoke revoked.pem
q openssl ca -config ca.cnf -gencrl -out crl.pem
