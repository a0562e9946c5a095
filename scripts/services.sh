# Sourced by scripts/test: make sure the PostgreSQL, Redis and RabbitMQ the tests use are running on loopback,
# and that Chromium (for the Flower browser test) is installed.
# Check first, then start (never restart a running server). Skipped with CU_START_SERVICES=0.
ensure_redis() {
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return 0; fi
  if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "==> installing redis-server"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    else
      echo "!! Redis is not running at 127.0.0.1:6379 and redis-server is not installed" >&2; return 0
    fi
  fi
  echo "==> starting Redis on 127.0.0.1:6379"
  mkdir -p /tmp/customer-updates-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp/customer-updates-redis --logfile /tmp/customer-updates-redis/redis.log
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && return 0; sleep 0.1; done
}

ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "==> installing postgresql"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
      echo "!! PostgreSQL is not running at 127.0.0.1:5432 and is not installed" >&2; return 0
    fi
  fi
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  conf="/etc/postgresql/$version/main"
  # The tests connect as user postgres without a password, on loopback only.
  if ! grep -q "customer-updates tests" "$conf/pg_hba.conf" 2>/dev/null; then
    sed -i '1i # customer-updates tests: trust on loopback\nhost all all 127.0.0.1/32 trust' "$conf/pg_hba.conf" || true
  fi
  echo "==> starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 100); do pg_isready -q -h 127.0.0.1 -p 5432 && return 0; sleep 0.2; done
  echo "!! PostgreSQL did not start" >&2
}

rabbitmq_answers() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }

ensure_rabbitmq() {
  if rabbitmq_answers; then return 0; fi
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "==> installing rabbitmq-server"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
    else
      echo "!! RabbitMQ is not running at 127.0.0.1:5672 and rabbitmq-server is not installed" >&2; return 0
    fi
  fi
  # The tests make a vhost per session with rabbitmqctl (guest/guest is allowed on loopback by default).
  echo "==> starting RabbitMQ on 127.0.0.1:5672"
  rabbitmq-server -detached || true
  rabbitmqctl -q await_startup --timeout 120 >/dev/null 2>&1 || true
  for _ in $(seq 100); do rabbitmq_answers && return 0; sleep 0.5; done
  echo "!! RabbitMQ did not start" >&2
}

# Not a server: the headless browser and its driver that tests/integration/test_flower_browser.py drives.
ensure_chromium() {
  if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then return 0; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing chromium and chromium-driver"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "!! chromium and chromium-driver are not installed: the Flower browser test is skipped (fails in CI)" >&2
  fi
}

if [ "${CU_START_SERVICES:-1}" != "0" ]; then
  ensure_redis
  ensure_postgres
  ensure_rabbitmq
  ensure_chromium
fi
