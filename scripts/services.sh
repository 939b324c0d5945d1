#!/usr/bin/env bash
# The services the test suite talks to, on this machine's loopback: PostgreSQL on 5432, Redis on
# 6379, NATS (JetStream on) on 4222. Each one that is down is started, if it is installed; one
# that is up is left alone, so running this again changes nothing. Prints each one's state and
# exits 1 if one that is installed could not be started (a missing one is for the tests to
# report: they skip, or fail under BALLAST_REQUIRE_SERVICES=1).
set -u

failed=0

# Poll CHECK every 0.25 s for up to SECONDS_ seconds; true once it passes.
wait_for() {
  local seconds=$1; shift
  local tries=$((seconds * 4))
  while ((tries-- > 0)); do
    "$@" && return 0
    sleep 0.25
  done
  "$@"
}

report() {  # NAME CHECK...: "started" or "failed to start"
  local name=$1; shift
  if wait_for 15 "$@"; then
    echo "$name: started"
  else
    echo "$name: failed to start"
    failed=1
  fi
}

postgres_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }
nats_up() { (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; }

if postgres_up; then
  echo "postgresql: up"
elif command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  # Debian's clusters: /etc/postgresql/<version>/<name>; the newest version's "main".
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1
  report postgresql postgres_up
else
  echo "postgresql: not installed"
fi

if redis_up; then
  echo "redis: up"
elif command -v redis-server >/dev/null 2>&1; then
  # A throwaway cache for tests: nothing saved to disk.
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ballast-tests.log >/dev/null 2>&1
  report redis redis_up
else
  echo "redis: not installed"
fi

if nats_up; then
  echo "nats: up"
elif nats=$(command -v nats-server || ls /usr/sbin/nats-server 2>/dev/null); then
  mkdir -p /var/lib/nats-server 2>/dev/null
  start-stop-daemon --start --oknodo --background --exec "$nats" -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log >/dev/null 2>&1
  report nats nats_up
else
  echo "nats: not installed"
fi

exit "$failed"
