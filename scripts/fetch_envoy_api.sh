#!/usr/bin/env bash
# Fetches Envoy's xDS v3 API protos from the pinned npm package
# @grpc/grpc-js-xds and verifies the tarball against its pinned integrity
# hash before unpacking. Called by CMake at configure time; idempotent.
#
# usage: fetch_envoy_api.sh DEST_DIR
set -euo pipefail

readonly PACKAGE="@grpc/grpc-js-xds"
readonly VERSION="1.14.1"
readonly INTEGRITY="sha512-F2mVXwEeMWw1znPUrp+8ykjsIOVnf7Rv+EyIvXOfz73w5tNolCnzokpLkE/d2Ehx30PJmZXqCQdMpx8DcBJohA=="

dest="${1:?usage: fetch_envoy_api.sh DEST_DIR}"
stamp="${dest}/.weft-${VERSION}"
if [[ -f "${stamp}" ]]; then
  exit 0
fi

command -v npm >/dev/null || { echo "fetch_envoy_api: npm is not installed (apt-get install npm)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
(cd "${work}" && npm pack --silent "${PACKAGE}@${VERSION}" >/dev/null)
tarball="$(ls "${work}"/*.tgz)"
actual="sha512-$(openssl dgst -sha512 -binary "${tarball}" | openssl base64 -A)"
if [[ "${actual}" != "${INTEGRITY}" ]]; then
  echo "fetch_envoy_api: integrity mismatch for ${PACKAGE}@${VERSION}: got ${actual}" >&2
  exit 1
fi
rm -rf "${dest}"
mkdir -p "${dest}"
tar -xzf "${tarball}" -C "${dest}" --strip-components=1 package/deps package/package.json
touch "${stamp}"
echo "fetch_envoy_api: ${PACKAGE}@${VERSION} verified and unpacked into ${dest}"
