#!/usr/bin/env bash
# Starts the OpenClaw gateway of one tenant.
#
# OPENCLAW_GATEWAY_BIND=lan       current releases: the gateway listens on
#                                 0.0.0.0:18789 itself (exec, no wrapper left).
# OPENCLAW_GATEWAY_BIND=loopback  releases that only bind 127.0.0.1:18789:
#                                 socat forwards 0.0.0.0:18790 to it.
# The token comes from OPENCLAW_GATEWAY_TOKEN; without one the gateway would
# run unauthenticated, so the container refuses to start. The gateway reads it
# from its environment: never pass it as an argument, where every process on
# the host sees it (ps, /proc/<pid>/cmdline).
set -euo pipefail

state_dir="${HOME}/.openclaw"
# The state directory is a bind mount owned by the tenant's UID; create what
# the gateway expects without touching existing files.
mkdir -p "$state_dir/devices" "$state_dir/cron" "$state_dir/canvas" "$state_dir/workspace"

if [[ -z "${OPENCLAW_GATEWAY_TOKEN:-}" ]]; then
    echo "openclaw-entrypoint: OPENCLAW_GATEWAY_TOKEN is empty; refusing to start an unauthenticated gateway" >&2
    exit 64
fi

# Level-1 Conversions API events go out without an operator: every
# OPENCLAW_CAPI_SWEEP_INTERVAL seconds `openclaw-capi sweep` sends the events of
# the dialogs that reached their threshold (batched, deduplicated, logged in
# capi_events_log). It runs here rather than on the host or as a gateway cron
# job: it needs only the tenant's own database role, it costs no model turn,
# and it lives and dies with the tenant. Its JSON lines go to the container log.
sweep_interval="${OPENCLAW_CAPI_SWEEP_INTERVAL:-0}"
if [[ "$sweep_interval" =~ ^[0-9]+$ ]] && (( sweep_interval > 0 )) && command -v openclaw-capi >/dev/null; then
    (
        trap 'exit 0' TERM INT
        while sleep "$sweep_interval"; do
            openclaw-capi sweep </dev/null || true
        done
    ) &
fi

case "${OPENCLAW_GATEWAY_BIND:-loopback}" in
    lan)
        exec openclaw gateway --bind lan --port 18789 --auth token
        ;;
    loopback)
        openclaw gateway --bind loopback --port 18789 --auth token &
        gateway=$!
        socat TCP-LISTEN:18790,bind=0.0.0.0,reuseaddr,fork TCP:127.0.0.1:18789 &
        forwarder=$!
        # docker stop sends SIGTERM to this shell: pass it on so both exit
        # cleanly instead of being killed at the stop timeout.
        trap 'kill -TERM "$gateway" "$forwarder" 2>/dev/null' TERM INT
        # Either one dying ends the container; the restart policy brings it back.
        wait -n "$gateway" "$forwarder" || true
        kill -TERM "$gateway" "$forwarder" 2>/dev/null || true
        wait
        exit 1
        ;;
    *)
        echo "openclaw-entrypoint: OPENCLAW_GATEWAY_BIND must be lan or loopback, got ${OPENCLAW_GATEWAY_BIND}" >&2
        exit 64
        ;;
esac
