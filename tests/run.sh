#!/usr/bin/env bash
# The whole test suite: installs the real tools the tests judge our output with (if missing), then
# runs every test of the workspace. Usage: bash tests/run.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests need: OCI validators, runtimes, a registry, diffoscope, a static libc, and
# the dpkg/apt/ca-certificates/openssl tools that judge the Debian support (oracles for versions,
# dependency closures, the CA bundle and ld.so.cache), a JRE whose keytool reads the Java trust store,
# and mmdebstrap, whose apt installs are the smoke matrix's oracle (tests/smoke_matrix.rs).
packages=(skopeo umoci oci-image-tool runc bubblewrap diffoscope-minimal docker-registry gcc libc6-dev
          dpkg-dev apt ca-certificates openssl libc-bin apache2-utils podman busybox python3 python3-venv
          default-jre-headless mmdebstrap)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
# The Debian tests read the host's package lists (real Packages files for the version and resolver
# oracles) and download real .debs from the host's mirror: refresh the lists.
$sudo apt-get update -qq
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The SBOM validators (pyspdxtools, CycloneDX's JsonStrictValidator) and the in-toto attestation
# bindings (SLSA provenance), pinned, in a virtualenv under the
# target directory (a fresh Debian's system Python refuses `pip install` outside one).
venv="${CARGO_TARGET_DIR:-target}/pyvenv"
mkdir -p "$(dirname "$venv")"
venv_abs="$(cd "$(dirname "$venv")" && pwd)/pyvenv"
# A venv's scripts name its absolute path: a copied or moved one is made again.
if [ -d "$venv" ] && [ "$(cat "$venv/.himg-path" 2>/dev/null)" != "$venv_abs" ]; then
  rm -rf "$venv"
fi
if [ ! -x "$venv/bin/pyspdxtools" ] \
   || ! "$venv/bin/python3" -c 'import cyclonedx.validation.json, in_toto_attestation, google.protobuf' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/python3" -m pip install -q 'spdx-tools==0.8.5' 'cyclonedx-python-lib[json-validation]==11.12.0' 'in-toto-attestation==0.9.3'
  echo "$venv_abs" >"$venv/.himg-path"
fi
export PATH="$(cd "$venv/bin" && pwd):$PATH"

# In CI a missing tool must fail the tests, never skip them.
export HIMG_REQUIRE_TOOLS=1
# The smoke matrix (tests/smoke_matrix.rs: images of common packages run like their apt installs,
# judged against mmdebstrap oracles). HIMG_SMOKE=report prints the himg half without failing on it;
# HIMG_SMOKE=0 turns it off for a quick local run.
export HIMG_SMOKE="${HIMG_SMOKE:-1}"
cargo test --workspace --locked "$@"
