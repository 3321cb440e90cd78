#!/bin/sh
# Plays GitHub: sends the demo gitopsd a signed push event for the head of
# the demo repository's main branch.
set -eu
cd "$(dirname "$0")/.."
repo="$(pwd)/var/demo/deploy.git"
after=$(git --git-dir "$repo" rev-parse main)
body=$(printf '{"ref":"refs/heads/main","before":"%s","after":"%s","created":false,"deleted":false,"forced":false,"commits":[],"head_commit":{"id":"%s"},"repository":{"full_name":"demo/deploy","name":"deploy","clone_url":"%s","ssh_url":"%s","html_url":"file://%s"},"pusher":{"name":"demo","email":"demo@localhost"}}' \
    0000000000000000000000000000000000000000 "$after" "$after" "$repo" "$repo" "$repo")
sig=$(printf %s "$body" | openssl dgst -sha256 -hmac "$(cat var/demo/github.secret)" | sed 's/^.* //')
curl -sS -X POST http://127.0.0.1:${GITOPSD_DEMO_PORT:-8080}/hooks/github \
    -H "Content-Type: application/json" -H "X-GitHub-Event: push" \
    -H "X-GitHub-Delivery: $(cat /proc/sys/kernel/random/uuid)" \
    -H "X-Hub-Signature-256: sha256=$sig" --data-binary "$body"
echo
