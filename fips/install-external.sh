#!/usr/bin/env bash
# Point sealgate at an operator-supplied FIPS provider (for example a validated 3.0.8/3.0.9 or 3.1.2
# build), instead of the one fips/build.sh makes.
#
# Usage: fips/install-external.sh /path/to/fips.so DIR [/path/to/fipsmodule.cnf]
#   Copies fips.so into DIR. If fipsmodule.cnf is given it is copied too (use the one produced when the
#   module was installed per its security policy); otherwise `openssl fipsinstall` writes one, which runs
#   the module's self-tests. Then writes DIR/openssl.cnf. Afterwards run sealgate with
#   SEALGATE_FIPS_DIR=DIR and check with `sealgate fips status`.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,10p' "$0" >&2; exit 2; }
module=$1
dir=$2
cnf=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
[ -f "$module" ] || { echo "install-external.sh: $module not found" >&2; exit 1; }
mkdir -p "$dir"
install -m 0644 "$module" "$dir/fips.so"
if [ -n "$cnf" ]; then
  install -m 0644 "$cnf" "$dir/fipsmodule.cnf"
else
  openssl fipsinstall -module "$dir/fips.so" -out "$dir/fipsmodule.cnf" -provider_name fips
fi
echo "external" >"$dir/VERSION"
"$here/write-openssl-cnf.sh" "$dir"
echo "fips: use it with SEALGATE_FIPS_DIR=$dir sealgate fips status"
