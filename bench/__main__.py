"""`python -m bench run ...`: seed, measure customer-updates and the plain Celery reference, print a table.

    python -m bench run --db postgres --customers 100000 --message-size 100 --workers 1 --repeat 3
    python -m bench run --smoke            # a few thousand customers, a few seconds: checks it all works
    python -m bench producer               # enqueue speed: every producer path against task.delay per command
    python -m bench merge-cost             # time per update of merging updates against plain ones
    python -m bench batch-cost             # worker and PostgreSQL CPU per update, no broker (A/B of code)
    python -m bench import --customers 1000000   # time per 1,000 of `customers import`, first chunks to last
    python -m bench windows TRACE.csv      # a latency phase (run --latency-trace DIR) by quarter seconds
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path

import redis

from bench import report, seed
from bench.brokers import broker_urls, empty_queues, purge_queues
from bench.measure import Figures, measure, median_figures
from bench.seed import Layout
from bench.targets import CustomerUpdates, PlainCelery, Target, reset_counts
from bench.workload import Workload

REDIS_BASE = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
CLAIM_KEY = "cu:test:claim"  # the key test sessions use to claim a Redis database number


def claim_redis(preferred: int) -> tuple[str, redis.Redis]:
    """A Redis database number nobody else holds (test sessions claim theirs with the same key)."""
    token = f"bench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    for number in [preferred, *range(15, 0, -1)]:
        client = redis.Redis.from_url(f"{REDIS_BASE}/{number}")
        if client.set(CLAIM_KEY, token, nx=True, ex=3600):
            return f"{REDIS_BASE}/{number}", client
    raise RuntimeError("no free Redis database number")


def empty_redis(client: redis.Redis) -> None:
    """Delete every key but the claim. Not FLUSHDB and claiming again: another process could claim the
    database in between."""
    doomed = [key for key in client.scan_iter(count=10_000) if key != CLAIM_KEY.encode()]
    for start in range(0, len(doomed), 10_000):
        client.unlink(*doomed[start:start + 10_000])


def parse_counts(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def run(args: argparse.Namespace) -> int:
    if args.smoke:
        args.customers, args.updates, args.reference_updates = 3000, 600, 150
        args.latency_seconds, args.repeat = 1.5, 1
    layout = Layout(args.customers)
    if args.latency_trace is not None:
        args.latency_trace.mkdir(parents=True, exist_ok=True)
    redis_url, client = claim_redis(args.redis_db)
    url = seed.database_url(args.db, f"cu_bench_{os.getpid()}")
    log_dir = Path(tempfile.mkdtemp(prefix="cu-bench-logs-"))
    env = {"CUSTOMER_UPDATES_LOG_LEVEL": args.log_level}
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    print(f"seeding {args.customers:,} customers ({args.db}) ...", file=sys.stderr, flush=True)
    try:
        seed.seed(url, layout)
        tables = []
        run_number = 0
        with broker_urls([b.strip() for b in args.broker.split(",") if b.strip()]) as brokers:
            for message_size in parse_counts(args.message_size):
                for workers in parse_counts(args.workers):
                    per_system: dict[str, list[Figures]] = {}
                    for repeat in range(args.repeat):
                        # Made one at a time, just before its run: the reference's app follows the last broker.
                        targets: list[tuple[Callable[[], Target], int, str]] = []
                        for broker_url in brokers.values():
                            targets.append((partial(CustomerUpdates, url, redis_url, message_size, env, broker_url),
                                            args.updates, broker_url))
                            if not args.no_reference:
                                targets.append((partial(PlainCelery, url, redis_url, broker_url),
                                                args.reference_updates, broker_url))
                        for make_target, count, broker_url in targets:
                            target = make_target()
                            empty_redis(client)
                            empty_queues(broker_url)
                            reset_counts(url)
                            workload = Workload(layout, seed=1000 * run_number + repeat, run=run_number)
                            run_number += 1
                            print(f"  {target.name}: {count:,} updates, {message_size}/message, {workers} worker(s), "
                                  f"run {repeat + 1}/{args.repeat}", file=sys.stderr, flush=True)
                            figures = measure(target, workload, count, workers, message_size, args.latency_seconds,
                                              log_dir, args.timeout, tuple(parse_counts(args.low_rates)),
                                              args.latency_trace)
                            target.close()
                            print("   ", report.one_line(figures), f"load={os.getloadavg()[0]:.2f}",
                                  file=sys.stderr, flush=True)
                            per_system.setdefault(target.name, []).append(figures)
                    medians = [median_figures(runs) for runs in per_system.values()]
                    tables.append((f"{args.db}, {message_size} update(s)/message, {workers} worker process(es), "
                                   f"median of {args.repeat}", medians))
                    print(report.table(*tables[-1]), flush=True)
        if len(tables) > 1:
            print(report.summary(tables))
    finally:
        empty_redis(client)
        client.delete(CLAIM_KEY)
        if not args.keep:
            seed.drop_database(args.db, url)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; worker logs in {log_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="throughput, latency, memory and CPU against the plain Celery reference")
    r.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    r.add_argument("--customers", type=int, default=100_000)
    r.add_argument("--updates", type=int, default=30_000, help="updates per customer-updates run")
    r.add_argument("--reference-updates", type=int, default=3_000,
                   help="updates per reference run (it is ~20x slower; the rate is what is compared)")
    r.add_argument("--message-size", default="100", help="updates per message: 1, 100 or a list like 1,100")
    r.add_argument("--workers", default="1", help="worker processes: 1, 2, 4 or a list like 1,2,4")
    r.add_argument("--repeat", type=int, default=3, help="runs per configuration (the table shows medians)")
    r.add_argument("--latency-seconds", type=float, default=6.0,
                   help="how long to send at half the measured rate to measure latency (0: skip)")
    r.add_argument("--low-rates", default="20,200",
                   help="paced rates (updates/s, one a message) of the low-load latency phases; empty: skip")
    r.add_argument("--no-reference", action="store_true", help="measure customer-updates only")
    r.add_argument("--broker", default="redis",
                   help="redis, rabbitmq or both (redis,rabbitmq): each system is measured on each broker")
    r.add_argument("--redis-db", type=int, default=13)
    r.add_argument("--log-level", default="INFO", help="customer-updates worker log level")
    r.add_argument("--timeout", type=float, default=600, help="give up on a run after this many seconds")
    r.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    r.add_argument("--latency-trace", type=Path, metavar="DIR",
                   help="write each latency phase's updates (when sent, how long) to a CSV file in DIR")
    r.add_argument("--smoke", action="store_true", help="a few thousand customers, a few seconds: checks it works")
    p = sub.add_parser("producer", help="enqueue speed: every producer path against task.delay per command")
    p.add_argument("--commands", type=int, default=20_000)
    p.add_argument("--redis-db", type=int, default=13)
    p.add_argument("--broker", default="redis", help="redis, rabbitmq or both (redis,rabbitmq): a table for each")
    m = sub.add_parser("merge-cost", help="time per update of merging updates against plain ones")
    m.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    m.add_argument("--customers", type=int, default=20_000)
    m.add_argument("--batches", type=int, default=10)
    b = sub.add_parser("batch-cost", help="worker and PostgreSQL CPU per update of the unit of work, no broker "
                                          "(to compare two versions of the code)")
    b.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    b.add_argument("--customers", type=int, default=100_000)
    b.add_argument("--batches", type=int, default=40, help="measured batches per run (after 10 to warm up)")
    b.add_argument("--message-size", type=int, default=100, help="updates per batch")
    b.add_argument("--repeat", type=int, default=3)
    b.add_argument("--redis-db", type=int, default=13)
    i = sub.add_parser("import", help="time per 1,000 customers of `customers import`, first chunks to last")
    i.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    i.add_argument("--customers", type=int, default=100_000)
    i.add_argument("--chunk", type=int, default=1000, help="lines per chunk")
    w = sub.add_parser("windows", help="a latency trace (run --latency-trace) by quarter seconds: steady tail "
                                       "or episodes")
    w.add_argument("trace", type=Path, help="a CSV file that run --latency-trace wrote")
    w.add_argument("--width", type=float, default=0.25, help="seconds a window")
    args = parser.parse_args(argv)
    if args.command == "windows":
        from bench import latency_trace

        return latency_trace.main(args.trace, args.width)
    if args.command == "import":
        from bench import import_cost

        return import_cost.main(args.db, args.customers, args.chunk)
    if args.command == "run":
        return run(args)
    if args.command in ("producer", "batch-cost"):
        from bench import batch_cost, producer_speed

        redis_url, client = claim_redis(args.redis_db)
        try:
            if args.command == "producer":
                with broker_urls([b.strip() for b in args.broker.split(",") if b.strip()]) as brokers:
                    for name, broker_url in brokers.items():
                        print(f"\nbroker: {name}")

                        def empty(broker_url: str = broker_url) -> None:
                            empty_redis(client)
                            purge_queues(broker_url)

                        producer_speed.main(redis_url, args.commands, empty, broker_url)
                return 0
            return batch_cost.main(args.db, args.customers, args.batches, args.message_size, args.repeat, redis_url)
        finally:
            empty_redis(client)
            client.delete(CLAIM_KEY)
    from bench import merge_cost

    return merge_cost.main(args.db, args.customers, args.batches)


if __name__ == "__main__":
    sys.exit(main())
