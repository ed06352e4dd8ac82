#!/usr/bin/env bash
# module.dependencies: libukey-pkcs11.so needs at run time only what every
# program that loads a PKCS#11 module already has: the C and C++ runtimes
# and OpenSSL's libcrypto (docs/architecture.md, "The module"). p11-kit,
# toml++ and pcsc-lite are the tools' dependencies, never the module's. In
# the sanitized tree the sanitizer runtimes are allowed too.
set -euo pipefail
: "${UKEY_MODULE:?UKEY_MODULE must name libukey-pkcs11.so}"
allowed=" ld-linux-x86-64.so.2 libc.so.6 libcrypto.so.3 libgcc_s.so.1 libm.so.6 libstdc++.so.6 "
case ${UKEY_SANITIZER:-} in
    address) allowed+="libasan.so.8 libubsan.so.1 " ;;
    thread) allowed+="libtsan.so.2 " ;;
esac
out=$(readelf -d "$UKEY_MODULE") || { echo "FAIL: readelf -d $UKEY_MODULE failed" >&2; exit 1; }
needed=$(sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p' <<<"$out")
[[ -n $needed ]] || { echo "FAIL: no NEEDED entries read from $UKEY_MODULE" >&2; exit 1; }
bad=0
while IFS= read -r lib; do
    if [[ $allowed != *" $lib "* ]]; then
        echo "FAIL: the module needs $lib at run time" >&2
        bad=1
    fi
done <<<"$needed"
[[ $needed == *libcrypto.so.3* ]] || { echo "FAIL: libcrypto.so.3 not among the NEEDED entries: is this the module?" >&2; exit 1; }
((bad == 0)) || exit 1
echo "module.dependencies: $(tr '\n' ' ' <<<"$needed")"
