#!/usr/bin/env bash
# NGINX_BIN for a test that needs nginx to refuse configurations (balancer-e2e.test.ts): while the file that
# REFUSE_CONFIG_FILE names exists, every `nginx -t` fails as a broken configuration would; otherwise this is
# nginx itself. The seam is the test's own: the balancer only runs NGINX_BIN, as it runs nginx.
if [ -n "${REFUSE_CONFIG_FILE:-}" ] && [ -e "$REFUSE_CONFIG_FILE" ]; then
  for arg in "$@"; do
    if [ "$arg" = -t ]; then
      echo "nginx: [emerg] configuration refused on purpose: $REFUSE_CONFIG_FILE exists" >&2
      exit 1
    fi
  done
fi
exec nginx "$@"
