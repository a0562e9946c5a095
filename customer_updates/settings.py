"""Typed settings, read only from the environment (and an optional `.env` file).

`DATABASE_URL` and `REDIS_URL` keep their conventional names so that platforms which inject them
(Heroku-style add-ons, docker-compose) work unchanged; every other setting is
`CUSTOMER_UPDATES_<NAME>`. Each field carries a description: `customer-updates settings` prints them.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CUSTOMER_UPDATES_", env_file=".env", extra="ignore", frozen=True
    )

    database_url: str = Field(
        "sqlite:///customer_updates.db",
        validation_alias=AliasChoices("DATABASE_URL", "CUSTOMER_UPDATES_DATABASE_URL"),
        description="SQLAlchemy URL of the customer database (postgresql+psycopg://... in production).",
    )
    redis_url: str = Field(
        "redis://localhost:6379/0",
        validation_alias=AliasChoices("REDIS_URL", "CUSTOMER_UPDATES_REDIS_URL"),
        description="Redis for stored results, events, dead letters and claims; the Celery broker too unless "
        "broker_url names another.",
    )
    broker_url: str = Field(
        "", description="The Celery broker (queues) of producers and workers: empty for REDIS_URL, an amqp:// URL "
        "for RabbitMQ (quorum queues, publisher confirms), or for a RabbitMQ cluster the nodes' URLs separated by "
        "';' (each connection fails over to the next one). Results, events and dead letters stay on REDIS_URL."
    )
    amqp_delivery_limit: int = Field(
        20, ge=1, description="RabbitMQ only: deliveries of one message (each return after a consumer died counts) "
        "before the quorum queue dead-letters it to the dead-letter list instead of delivering it again."
    )
    amqp_heartbeat_seconds: int = Field(
        5, ge=0, description="RabbitMQ only: the AMQP heartbeat a worker asks for (RabbitMQ takes the lower of "
        "this and its own, 60 by default). RabbitMQ hands a worker's unacknowledged messages to another one only "
        "when that worker's connection closes, and it notices a host the network cut off only when heartbeats "
        "stop, one to two heartbeats later. 0 turns heartbeats off (a cut-off host's messages then wait for TCP "
        "to give up, which can take many minutes)."
    )
    visibility_timeout: float = Field(
        20, ge=2,
        description="Seconds a reserved message stays with its worker without that worker renewing its lease "
        "on it; then the restore sweep hands it to another worker. A live worker renews what it holds every "
        "quarter of this and every worker sweeps as often, so a killed worker's messages are back on the "
        "queue within 1.25 times this (customer_updates/worker/leases.py). Task length does not matter: "
        "leases are renewed while tasks run.",
    )
    database_unreachable_client_seconds: int = Field(
        10, ge=0, description="PostgreSQL only: seconds the server keeps the session of a client it cannot reach "
        "(a worker host cut off by the network) before it drops the session and with it the row locks of its "
        "open transaction; each connection sets the server's TCP keepalive and tcp_user_timeout parameters to "
        "this. Until then other workers wait on those customers; the server's own default is two hours of TCP "
        "keepalive. 0 keeps the server's settings.",
    )
    max_retries: int = Field(
        30, description="Most transient-failure retries of one message, whatever retry_budget_seconds allows."
    )
    retry_budget_seconds: float = Field(
        60.0, description="A message failing transiently is retried until its retries have surely waited this "
        "long in all (each delay is at least half its bound), then dead-lettered: longer than a database "
        "restart or failover."
    )
    retry_backoff_base: float = Field(
        0.5, description="Bound of the first retry delay in seconds; doubles each retry."
    )
    retry_backoff_max: float = Field(10.0, description="Upper bound of one retry delay in seconds.")
    result_ttl_seconds: int = Field(
        7 * 24 * 3600, description="How long results stay readable in Redis (the database keeps them longer)."
    )
    idempotency_retention_days: int = Field(
        30, description="Idempotency records (and the stored results) older than this are purged by beat."
    )
    outbox_relay_after_seconds: float = Field(
        15.0, description="Outbox rows not confirmed as published after this long are republished by the relay."
    )
    outbox_relay_interval_seconds: float = Field(10.0, description="How often beat runs the outbox relay.")
    events_stream: str = Field("customer_updates.events", description="Redis stream of customer events.")
    events_maxlen: int = Field(100_000, description="Approximate bound of the events stream length.")
    dead_letter_key: str = Field(
        "customer_updates.dead_letters", description="Redis list holding dead-lettered raw messages."
    )
    metrics_dir: str = Field(
        "", description="Folder where a worker's processes write their Prometheus counters for `customer-updates "
        "metrics` on the same host (PROMETHEUS_MULTIPROC_DIR; empty: the counters are not served).",
    )
    dead_letter_retention_days: float = Field(
        30.0, description="Dead letters older than this are purged by beat's purge task (0: kept until dropped)."
    )
    worker_batch_size: int = Field(
        500, description="Most commands one worker transaction applies together (consumer-side batching): "
        "larger batches share a transaction's round trips among more updates, smaller ones lock fewer "
        "customers at once and lose less work when a transaction is rolled back and retried."
    )
    worker_claim_seconds: float = Field(
        10.0, description="Before a transaction a worker claims its request ids on Redis for at most this long, "
        "and defers the ones another worker is applying (a producer's retry of a request still in flight) "
        "instead of rolling back a whole batch on the unique key (customer_updates/messaging/claims.py). 0: no claims."
    )
    worker_flush_interval: float = Field(
        0.02, description="Seconds a worker waits to fill a consumer-side batch before applying it."
    )
    worker_flush_at_commands: int = Field(
        100, description="Commands that make a consumer-side batch worth applying at once when a pool process "
        "is free, without waiting for worker_flush_interval (a hundred-update message goes at once)."
    )
    worker_flush_every: int = Field(
        512, description="Messages that make a consumer-side batch full (applied at once, in transactions of "
        "at most worker_batch_size commands). At most worker_prefetch_max x concurrency are reserved."
    )
    worker_prefetch_multiplier: int = Field(
        16, description="Messages each worker process reserves ahead when it starts; from then on the "
        "reservation follows worker_reserved_commands (consumer-side batching needs messages in hand)."
    )
    worker_reserved_commands: int = Field(
        4_000, description="Commands a worker keeps reserved ahead, shared by its pool processes (at least two "
        "batches each): the prefetch count becomes this divided by the commands a message carries (measured as "
        "messages arrive), so that one-update messages keep the pool fed and hundred-update messages do not fill "
        "the main process's memory (it holds every reserved message)."
    )
    worker_prefetch_max: int = Field(
        1024, description="Most messages each worker process reserves ahead, however small they are."
    )
    worker_fetch_batch: int = Field(
        128, description="Most messages a worker takes from Redis per round trip (within its prefetch count): "
        "one Lua script records them as unacknowledged and takes them. 1 keeps kombu's one message per BRPOP."
    )
    worker_gc_threshold: int = Field(
        50_000, description="Allocations between two young-generation garbage collections in each worker "
        "process (main and pool), what was imported at start frozen; in pool processes a collection of the "
        "young generations after each batch and a full one every 100 batches. A batch allocates many "
        "short-lived objects that reference counting frees anyway; Python's default threshold would scan "
        "them again and again for cycles. 0 keeps Python's default."
    )
    org_cache_seconds: float = Field(30.0, description="How long a worker process caches an org's configuration.")
    producer_message_size: int = Field(
        100, description="Commands per queue message when the producer splits a large batch."
    )
    producer_linger_ms: float = Field(
        5.0, ge=0, description="How long a buffered command (enqueue_update with durable=False) may wait in the "
        "producer's memory for others to share its round trip to Redis. Durable sends never wait for it."
    )
    producer_buffer_commands: int = Field(
        1000, ge=1, description="Buffered commands a producer holds at most before they are on Redis: a flush "
        "starts when this many are held and further buffered sends wait. What a crash can lose at most."
    )
    producer_remembered_hashes: int = Field(
        100_000, ge=0, description="How many request ids given by the caller a Producer remembers the payload "
        "hash of, so that its get_result answers 409 when the id's stored result belongs to another payload."
    )
    flower_basic_auth: str = Field("", description="user:password for Flower's basic auth (empty: no auth).")
    health_max_wait_seconds: float = Field(
        60.0, description="`health` says degraded when a queue's oldest message waited longer than this."
    )
    health_max_outbox_age_seconds: float = Field(
        120.0, description="`health` says degraded when follow-on work (outbox) waits longer than this."
    )
    health_worker_timeout_seconds: float = Field(
        1.0, description="How long `health` waits for workers to answer its broadcast (a worker that does not "
        "answer in time counts as absent)."
    )
    health_worker_min_uptime_seconds: float = Field(
        10.0, description="`health` says degraded when every worker consuming a queue has been up for less "
        "than this (workers restarting in a loop answer now and then, but apply nothing)."
    )
    http_wait_seconds: float = Field(
        5.0, description="How long the HTTP ingress waits for a batch result before answering 202."
    )
    http_max_body_bytes: int = Field(2_000_000, description="Largest accepted HTTP request body.")
    http_max_batch_items: int = Field(100, description="Most customers in one HTTP request (code 1060 beyond).")
    http_auth_cache_seconds: float = Field(
        60.0, description="How long the HTTP ingress trusts a verified credential before checking it again "
        "(scrypt is slow on purpose; a changed or removed credential takes effect after this long)."
    )
    http_login_failures_per_client: str = Field(
        "20/minute", description="Failed logins allowed per client address in a moving window (`limits` notation, "
        "e.g. 20/minute); beyond it the ingress answers 429 with Retry-After, without checking the password."
    )
    http_login_failures_per_username: str = Field(
        "10/minute", description="Failed logins allowed per username in a moving window, from any address "
        "(`limits` notation); beyond it a login not verified before is answered 429."
    )
    http_auth_max_hashing: int = Field(
        2, ge=1, description="Most password verifications one ingress process runs at once (scrypt is "
        "slow and memory-hard on purpose, so each one holds a thread and its memory; docs/http.md)."
    )
    http_auth_max_pending: int = Field(
        64, ge=1, description="Most logins one ingress process verifies or holds waiting for verification; "
        "beyond it the ingress answers 429 with Retry-After."
    )
    http_keep_alive_seconds: int = Field(
        5, ge=1, description="How long an idle keep-alive connection stays open between requests."
    )
    http_header_timeout_seconds: float = Field(
        10.0, gt=0, description="How long a connection may take to send a request's headers (after it opens, "
        "or after the previous response) before it is closed."
    )
    http_body_timeout_seconds: float = Field(
        30.0, gt=0, description="How long a request may take to send its body before the ingress answers 408."
    )
    http_max_connections: int = Field(
        1000, ge=1, description="Most open connections per ingress process; connections beyond are closed at once."
    )
    http_max_header_bytes: int = Field(
        16_384, ge=1024, description="Largest request line plus headers; larger ones are answered 400."
    )
    log_level: str = Field("INFO", description="Log level of the structured JSON logs.")
    log_json: bool = Field(True, description="Emit logs as JSON lines (false: plain text for local work).")

    failpoint: str = Field(
        "", description="Testing only: a failpoint name (e.g. after_commit) where the worker kills itself."
    )
    failpoint_once_file: str = Field(
        "", description="Testing only: with a failpoint, fire only if this file does not exist yet (then create it)."
    )

    @property
    def celery_broker_url(self) -> str:
        """The broker producers and workers use: broker_url, or REDIS_URL when it is empty."""
        return self.broker_url or self.redis_url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once. Tests call `get_settings.cache_clear()` after changing env."""
    return Settings()
