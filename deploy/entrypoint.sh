#!/bin/sh
# Runs `workmesh "$@"`. Containers advertise their own hostname to the registry unless told
# otherwise: with `deploy: replicas`, every container has its own hostname, and Docker's DNS
# resolves it on the compose network (Consul's health checks and the gateway dial it).
set -eu
: "${WORKMESH_ADVERTISE_HOST:=${HOSTNAME:-$(hostname)}}"
: "${WORKMESH_WORKER_ADVERTISE:=$WORKMESH_ADVERTISE_HOST}"
: "${WORKMESH_RESULTS_ADVERTISE:=$WORKMESH_ADVERTISE_HOST}"
: "${WORKMESH_GATEWAY_ADVERTISE:=$WORKMESH_ADVERTISE_HOST}"
export WORKMESH_ADVERTISE_HOST WORKMESH_WORKER_ADVERTISE WORKMESH_RESULTS_ADVERTISE WORKMESH_GATEWAY_ADVERTISE
exec workmesh "$@"
