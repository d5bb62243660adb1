#!/bin/sh
# The collector's main process: prunes past days now and every COLLECTOR_PRUNE_SECONDS in the
# background (no cron in the image), then runs syslog-ng in the foreground as the container's process 1,
# which gets Docker's SIGTERM. The loop is syslog-ng's child and ends with the container.
set -eu
interval="${COLLECTOR_PRUNE_SECONDS:-3600}"
(
  while :; do
    /usr/local/bin/collector-prune || echo "run: prune failed; retrying in $interval s" >&2
    sleep "$interval"
  done
) &
exec syslog-ng "$@"
