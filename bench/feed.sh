#!/usr/bin/env bash
# Provider feed: empty polls per second at 64 connections, and the server's memory while
# 10,000 long polls wait. PostgreSQL on 127.0.0.1:5432 (trust auth); loopback only.
#
#   bench/feed.sh        # DURATION=10 POLLERS=64 IDLE=10000
DURATION=${DURATION:-10}
POLLERS=${POLLERS:-64}
IDLE=${IDLE:-10000}
PORT=${PORT:-18383}
POOL=${POOL:-16}
source "$(dirname "$0")/lib.sh"
start_server
setup_fixtures
phase_empty_polls
phase_idle_polls
echo "empty polls: $EMPTY_POLLS ($POLLERS connections, ${DURATION}s)"
echo "server RSS after start-up: $RSS_START kB"
echo "idle long polls ($IDLE, wait=60): $IDLE_POLLS"
