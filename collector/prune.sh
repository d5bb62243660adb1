#!/bin/sh
# Bounds the collector's disk use (syslog-ng has no size rotation and never deletes): in COLLECTOR_LOG_DIR,
# deletes the day directories (YYYY-MM-DD in the local time zone, as syslog-ng.conf names them; the
# image sets TZ=UTC) older than
# COLLECTOR_KEEP_DAYS days, then, oldest first, past days while the whole directory holds more than
# COLLECTOR_MAX_MB. Today's directory is never deleted: syslog-ng is writing it.
set -eu
dir="${COLLECTOR_LOG_DIR:?COLLECTOR_LOG_DIR is not set}"
keep="${COLLECTOR_KEEP_DAYS:-7}"
max_mb="${COLLECTOR_MAX_MB:-1024}"
case "$keep$max_mb" in
  *[!0-9]*) echo "prune: COLLECTOR_KEEP_DAYS=$keep and COLLECTOR_MAX_MB=$max_mb must be whole numbers" >&2; exit 2 ;;
esac

today="$(date +%F)"
oldest_kept="$(date -d "@$(($(date +%s) - keep * 86400))" +%F)"

# Day directories, oldest first (ISO dates sort as text).
days() {
  for path in "$dir"/[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]; do
    [ -d "$path" ] && [ "${path##*/}" != "$today" ] && echo "$path"
  done
  return 0
}

for path in $(days); do
  if [ "${path##*/}" \< "$oldest_kept" ]; then
    echo "prune: deleting $path (older than $keep days)" >&2
    rm -rf -- "$path"
  fi
done

for path in $(days); do
  [ "$(du -sm -- "$dir" | cut -f1)" -gt "$max_mb" ] || break
  echo "prune: deleting $path ($dir holds more than $max_mb MB)" >&2
  rm -rf -- "$path"
done
