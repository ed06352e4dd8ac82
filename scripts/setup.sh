#!/usr/bin/env bash
# scripts/setup.sh: install the Debian 12 packages ukey needs to build, test
# and demo. Installs only what is missing (apt-get update only then), so it
# is idempotent and quick when everything is there. Run as root (or with sudo).
set -euo pipefail

# The one list of packages. Keep it sorted by purpose.
PACKAGES=(
    # build
    build-essential cmake ninja-build pkg-config git
    libp11-kit-dev p11-kit libssl-dev openssl libpcsclite-dev
    libtomlplusplus-dev libcli11-dev nlohmann-json3-dev
    libgtest-dev libgmock-dev
    # backend token and smart-card stack
    softhsm2 pcscd vsmartcard-vpcd
    # PKCS#11 clients used by the tests and the demo
    opensc gnutls-bin libnss3-tools libengine-pkcs11-openssl
    # misc tools used by the scripts and tests: jq checks --json output,
    # groff-base and man-db render the man pages, iproute2/util-linux/mount give the pcscd
    # test harness its private namespaces
    scep procps ca-certificates coreutils diffutils
    jq groff-base man-db iproute2 util-linux mount
    # the Debian package (debian/): built, checked and installed into a
    # fresh Debian 12 root by tests/package/deb.sh
    debhelper dpkg-dev lintian mmdebstrap
    # real browsers under a virtual display (tests/browsers)
    chromium firefox-esr xvfb xdotool x11-utils
)

export DEBIAN_FRONTEND=noninteractive

missing=()
for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [[ $status == installed ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
    echo "setup: all ${#PACKAGES[@]} packages already installed"
    exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo --preserve-env=DEBIAN_FRONTEND)
    else
        echo "setup: missing packages (${missing[*]}) and not root; run as root" >&2
        exit 1
    fi
fi

echo "setup: installing ${missing[*]}"
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup: done"
