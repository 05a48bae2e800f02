#!/usr/bin/env bash
# Write DIR/openssl.cnf: load fipsmodule.cnf, activate only the `fips` and `base` providers, and make
# `fips=yes` the default property, so every algorithm Node fetches must come from the FIPS provider.
# Usage: write-openssl-cnf.sh DIR   (DIR holds fips.so and fipsmodule.cnf)
set -euo pipefail
dir=$(cd "$1" && pwd)
[ -f "$dir/fipsmodule.cnf" ] || { echo "write-openssl-cnf.sh: $dir/fipsmodule.cnf not found" >&2; exit 1; }
cat >"$dir/openssl.cnf" <<EOF
# Written by sealgate fips/write-openssl-cnf.sh. Node reads the nodejs_conf section.
nodejs_conf = sealgate_init
openssl_conf = sealgate_init

.include $dir/fipsmodule.cnf

[sealgate_init]
providers = sealgate_providers
alg_section = sealgate_algorithms

[sealgate_providers]
fips = fips_sect
base = sealgate_base

[sealgate_base]
activate = 1

[sealgate_algorithms]
default_properties = fips=yes
EOF
echo "fips: wrote $dir/openssl.cnf"
