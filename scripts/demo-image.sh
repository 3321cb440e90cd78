#!/bin/sh
# Plays a Docker distribution registry: notifies the demo gitopsd that
# localhost:5000/demo/web:<tag> was pushed (GITOPSD_DEMO_PORT: where it listens).
set -eu
cd "$(dirname "$0")/.."
tag=${1:-1.1.0}
id=$(openssl rand -hex 8)
digest="sha256:$(printf %s "$tag" | openssl dgst -sha256 | sed 's/^.* //')"
body=$(printf '{"events":[{"id":"%s","timestamp":"%s","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","repository":"demo/web","url":"http://localhost:5000/v2/demo/web/manifests/%s","tag":"%s"},"request":{"host":"localhost:5000","method":"PUT"},"actor":{},"source":{"addr":"localhost:5000"}}]}' \
    "$id" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$digest" "$digest" "$tag")
curl -sS -X POST http://127.0.0.1:${GITOPSD_DEMO_PORT:-8080}/hooks/registry \
    -H "Content-Type: application/vnd.docker.distribution.events.v1+json" \
    -H "Authorization: Bearer $(cat var/demo/registry.token)" \
    --data-binary "$body"
echo
