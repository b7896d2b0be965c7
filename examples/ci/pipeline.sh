#!/usr/bin/env bash
# The scheduled hardening loop for a workspace of .himg files — what examples/ci/github-actions.yml
# and examples/ci/gitlab-ci.yml run, and what tests/pipeline.rs runs verbatim.
#
#   1. import the newest advisories (when a file or URL is given);
#   2. move the locks and registry-base pins (update.json: every move, with the advisories it fixes);
#   3. say which images change (affected.json, against the store: the matrix of what is rebuilt);
#   4. build the workspace (everything unchanged is reused, from the store or the binary cache);
#   5. run the images' tests;
#   6. gate on vulnerabilities (--fail-on, default critical);
#   7. push every image with its SBOMs to PREFIX/IMAGE:TAG, or to its `publish` repository
#      (push.json: the digests);
#   8. when PROMOTE_TO is set, promote those digests (the ones the gate above judged) to the first
#      stage, PROMOTE_TO/IMAGE:TAG, each with a signed record (promote.json); later stages use
#      `himg promote … --require-stage` on this record.
#
# Usage: bash examples/ci/pipeline.sh WORKSPACE REGISTRY/PREFIX [ADVISORIES]
# Environment: HIMG (the himg binary, default `himg`), TAG (default `latest`), FAIL_ON (default
# `critical`), PROMOTE_TO (`REGISTRY/PREFIX` of the first stage; unset: no promotion), STAGE (its
# name, default `staging`), SIGN_KEY (the key that signs promotion records: a `himg key generate`
# NAME or a file; default the configured one), HIMG_STORE and HIMG_SUBSTITUTERS as for any himg
# command.
set -euo pipefail
ws="$1"
prefix="$2"
advisories="${3:-}"
himg="${HIMG:-himg}"

if [ -n "$advisories" ]; then
  "$himg" vulndb import "$advisories"
fi
"$himg" update "$ws" --json >update.json
"$himg" affected "$ws" --json >affected.json
"$himg" build "$ws" --locked --out out --json >build.json
"$himg" test "$ws"
"$himg" scan "$ws" --fail-on "${FAIL_ON:-critical}"
"$himg" push "$ws" "$prefix" --tag "${TAG:-latest}" --sbom --json >push.json
if [ -n "${PROMOTE_TO:-}" ]; then
  "$himg" promote "$ws" "$PROMOTE_TO" --from "$prefix" --tag "${TAG:-latest}" \
    --stage "${STAGE:-staging}" \
    ${SIGN_KEY:+--sign-key "$SIGN_KEY"} --json >promote.json
fi
