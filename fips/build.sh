#!/usr/bin/env bash
# Build the OpenSSL FIPS provider (fips.so) from Debian's OpenSSL source package,
# run `openssl fipsinstall`, and write an openssl.cnf that makes Node load it.
#
# Output (default: <repo>/.cache/fips, git-ignored):
#   fips.so            the provider module
#   fipsmodule.cnf     written by `openssl fipsinstall` (module MAC, self-test status)
#   openssl.cnf        the config Node reads through OPENSSL_CONF
#   VERSION            the upstream OpenSSL version the module was built from
#
# Nothing is rebuilt when fips.so and fipsmodule.cnf are already there. Pass --force to rebuild.
#
# NOTE: a provider built here is NOT a validated module. The validated OpenSSL FIPS providers are
# 3.0.8/3.0.9 (FIPS 140-2, cert #4282, historical since 2026-09-21) and 3.1.2 (FIPS 140-3, cert #4985).
# Operators who need a validated module use fips/install-external.sh with their own fips.so.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
out=${SEALGATE_FIPS_DIR:-$repo/.cache/fips}
force=0
[ "${1:-}" = "--force" ] && force=1

if [ $force -eq 0 ] && [ -f "$out/fips.so" ] && [ -f "$out/fipsmodule.cnf" ] && [ -f "$out/openssl.cnf" ]; then
  echo "fips: cached provider in $out ($(cat "$out/VERSION" 2>/dev/null || echo unknown version)); nothing to build"
  exit 0
fi

need_root() { [ "$(id -u)" -eq 0 ] || { echo "fips/build.sh: $* needs root" >&2; exit 1; }; }

# Debian ships the upstream tarball as openssl_<ver>.orig.tar.gz; fetching it needs a deb-src entry
# for the same suites as the existing deb entries.
src_list=/etc/apt/sources.list.d/sealgate-deb-src.sources
if ! apt-get source --download-only --print-uris openssl >/dev/null 2>&1; then
  need_root "adding a deb-src entry"
  cat >"$src_list" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt-get update -qq
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# The archive index can list a version whose files are not (yet) on the mirror; try each listed
# version, newest first, unless SEALGATE_OPENSSL_SRC_VERSION pins one.
versions=${SEALGATE_OPENSSL_SRC_VERSION:-$(apt-cache showsrc openssl | awk '/^Version:/{print $2}' | sort -rV)}
fetched=""
for v in $versions; do
  if apt-get source --download-only "openssl=$v" >/dev/null 2>&1; then fetched=$v; break; fi
  echo "fips: openssl source $v is not downloadable; trying the next version" >&2
done
[ -n "$fetched" ] || { echo "fips/build.sh: could not download any OpenSSL source package ($versions)" >&2; exit 1; }
orig=$(ls openssl_*.orig.tar.gz | head -1)
version=${orig#openssl_}
version=${version%.orig.tar.gz}
echo "fips: building the FIPS provider from upstream OpenSSL $version (Debian source package)"
tar xzf "$orig"
cd "openssl-$version"
./Configure enable-fips shared >/dev/null
# Only the provider and the openssl app (for fipsinstall) are needed.
make -j"$(nproc)" build_generated >/dev/null
make -j"$(nproc)" providers/fips.so apps/openssl >/dev/null

mkdir -p "$out"
install -m 0644 providers/fips.so "$out/fips.so"
# fipsinstall runs the module's self-tests and records the module's HMAC.
LD_LIBRARY_PATH="$PWD" ./apps/openssl fipsinstall -module "$out/fips.so" -out "$out/fipsmodule.cnf" -provider_name fips
echo "$version" >"$out/VERSION"
"$here/write-openssl-cnf.sh" "$out"
echo "fips: provider ready in $out"
