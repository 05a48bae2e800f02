#!/usr/bin/env bash
# Creates SoftHSM2 test tokens from nothing, in a directory of their own.
#
#   test/tokens/softhsm2.sh DIR [LABEL ...]        (default label: sealgate)
#
# DIR gets softhsm2.conf (tokens under DIR/tokens, file object store), user.pin (mode 0600) and one
# initialized token per LABEL, all with the same random user PIN. Nothing outside DIR is touched, so
# a test run never sees tokens left by an earlier one. The PINs are passed to softhsm2-util on its
# command line: acceptable for throw-away test tokens, never for real ones.
#
# Prints KEY=VALUE lines for the caller:
#   SOFTHSM2_CONF=…      export this before the module is initialized (SoftHSM2 reads it in C_Initialize)
#   PKCS11_MODULE=…      the module path
#   PIN_FILE=…           the user PIN file
#   TOKEN_LABEL=…        once per token
set -euo pipefail

dir=${1:?usage: softhsm2.sh DIR [LABEL ...]}
shift
labels=("$@")
[ ${#labels[@]} -gt 0 ] || labels=(sealgate)

module=""
for m in "${SOFTHSM2_MODULE:-}" /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
  /usr/lib64/pkcs11/libsofthsm2.so /usr/local/lib/softhsm/libsofthsm2.so; do
  if [ -n "$m" ] && [ -f "$m" ]; then module=$m; break; fi
done
[ -n "$module" ] || { echo "softhsm2.sh: libsofthsm2.so not found; install softhsm2 (Debian: apt-get install softhsm2)" >&2; exit 1; }
command -v softhsm2-util >/dev/null || { echo "softhsm2.sh: softhsm2-util not found; install softhsm2" >&2; exit 1; }

mkdir -p "$dir/tokens"
chmod 700 "$dir"
dir=$(cd "$dir" && pwd)
cat >"$dir/softhsm2.conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF

random_pin() { od -An -N8 -tx8 /dev/urandom | tr -d ' \n'; }
pin=${SEALGATE_TEST_PIN:-$(random_pin)}
so_pin=$(random_pin)
(umask 077 && printf '%s\n' "$pin" >"$dir/user.pin")

export SOFTHSM2_CONF="$dir/softhsm2.conf"
for label in "${labels[@]}"; do
  softhsm2-util --init-token --free --label "$label" --so-pin "$so_pin" --pin "$pin" >/dev/null
done

echo "SOFTHSM2_CONF=$dir/softhsm2.conf"
echo "PKCS11_MODULE=$module"
echo "PIN_FILE=$dir/user.pin"
for label in "${labels[@]}"; do echo "TOKEN_LABEL=$label"; done
