#!/usr/bin/env bash
# Creates an NSS softoken database from nothing, for use as a PKCS#11 token.
#
#   test/tokens/nss.sh DIR
#
# DIR gets db/ (cert9.db, key4.db, pkcs11.txt, made by certutil -N) protected by a random user PIN,
# and user.pin (mode 0600). The token is the slot labelled "NSS Certificate DB" (BRIEF section 5).
# NSS_MAX_MP_PBE_ITERATION_COUNT=1 caps the PBKDF2 iterations that protect the database: a test
# database then costs ~1 ms per private-key use instead of ~50 ms. Set the same variable in the
# process that uses the token, since keys it creates are protected with the count in force then.
#
# Prints KEY=VALUE lines for the caller:
#   PKCS11_MODULE=…       libsoftokn3.so
#   LIBRARY_PARAMETERS=…  the C_Initialize parameters that point NSS at DIR/db
#   PIN_FILE=…            the user PIN file
#   TOKEN_LABEL=NSS Certificate DB
#   NSS_MAX_MP_PBE_ITERATION_COUNT=1
set -euo pipefail

dir=${1:?usage: nss.sh DIR}

module=""
for m in "${NSS_SOFTOKN_MODULE:-}" /usr/lib/x86_64-linux-gnu/libsoftokn3.so /usr/lib/aarch64-linux-gnu/libsoftokn3.so \
  /usr/lib64/libsoftokn3.so /usr/lib/libsoftokn3.so; do
  if [ -n "$m" ] && [ -f "$m" ]; then module=$m; break; fi
done
[ -n "$module" ] || { echo "nss.sh: libsoftokn3.so not found; install libnss3 (Debian: apt-get install libnss3)" >&2; exit 1; }
command -v certutil >/dev/null || { echo "nss.sh: certutil not found; install libnss3-tools" >&2; exit 1; }

mkdir -p "$dir/db"
chmod 700 "$dir"
dir=$(cd "$dir" && pwd)
pin=${SEALGATE_TEST_PIN:-$(od -An -N8 -tx8 /dev/urandom | tr -d ' \n')}
(umask 077 && printf '%s\n' "$pin" >"$dir/user.pin")
NSS_MAX_MP_PBE_ITERATION_COUNT=1 certutil -N -d "sql:$dir/db" -f "$dir/user.pin"

echo "PKCS11_MODULE=$module"
echo "LIBRARY_PARAMETERS=configdir='sql:$dir/db' certPrefix='' keyPrefix='' secmod='secmod.db' flags="
echo "PIN_FILE=$dir/user.pin"
echo "TOKEN_LABEL=NSS Certificate DB"
echo "NSS_MAX_MP_PBE_ITERATION_COUNT=1"
