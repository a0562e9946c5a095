"""kombu's Redis transport with fewer round trips and less Python work per message.

With one update a message the worker's main process, not the database, limits throughput: for every
message kombu does a BRPOP, records the message as unacked (a second round trip), acknowledges it (a
third) and sends task events, and each of those made a new `redis.Redis` client object first. Here:

- a channel reuses one client for those short commands (same connection pool, as before);
- after a BRPOP, one Lua script records that message as unacked and takes up to `fetch_batch - 1`
  more from the same queue, recording each as unacked in the same atomic step (kombu's BRPOP leaves a
  moment between taking a message and recording it; the script leaves none for the ones it takes);
- `acknowledge_all` removes a whole batch's messages from the unacked index in one pipeline;
- a queue entry that is not a well-typed kombu message (customer_updates/worker/queue_entries.py) goes to the
  dead-letter list, whether BRPOP or the script took it: kombu and Celery read it outside any error
  handling, which stopped the worker; and a message whose delivery raises anyway is dead-lettered too;
- restoring unacknowledged messages (at shutdown, after the visibility timeout) decodes them as plain
  JSON and dead-letters a record that is not such a message instead of putting it back on the queue.

The keys and the records are kombu's own (`unacked`, `unacked_index`, `[payload, exchange, routing_key]`),
so kombu's restore of unacknowledged messages (at shutdown, after the visibility timeout) works unchanged;
only the number of messages per round trip differs, and never beyond the prefetch count.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from time import time
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str

from customer_updates.messaging.dead_letters import push_dead_letter
from customer_updates.worker import leases
from customer_updates.worker.decoder import loads
from customer_updates.worker.queue_entries import Unusable, check, decode_entry

log = logging.getLogger("customer_updates.worker.transport")


# KEYS: unacked index (sorted set), unacked records (hash), then the queue's lists, highest priority first.
# ARGV: how many more to take, the time to index them by, the message BRPOP returned.
# Returns 1 and the messages taken after the first one, in the order further BRPOPs would have returned
# them; 0 alone when the first is not a message the script understands (kombu's path then handles it).
# A taken entry that is not such a message goes back where it was and ends the taking.
_RECORD_AND_TAKE_MORE = """
local function record(item)
  local ok, message = pcall(cjson.decode, item)
  if not ok or type(message) ~= 'table' or type(message['properties']) ~= 'table' then return false end
  local properties = message['properties']
  local info = properties['delivery_info']
  local tag = properties['delivery_tag']
  if type(info) ~= 'table' or type(tag) ~= 'string' then return false end
  redis.call('ZADD', KEYS[1], ARGV[2], tag)
  redis.call('HSET', KEYS[2], tag,
             '[' .. item .. ',' .. cjson.encode(info['exchange']) .. ',' .. cjson.encode(info['routing_key']) .. ']')
  return true
end
if not record(ARGV[3]) then return {0} end
local wanted = tonumber(ARGV[1])
local taken = {1}
for i = 3, #KEYS do
  while #taken <= wanted do
    local item = redis.call('RPOP', KEYS[i])
    if not item then break end
    if not record(item) then
      redis.call('RPUSH', KEYS[i], item)
      return taken
    end
    taken[#taken + 1] = item
  end
end
return taken
"""


class QoS(kombu_redis.QoS):
    channel: Channel

    def append(self, message: Any, delivery_tag: str) -> None:
        if delivery_tag in self.channel.recorded_by_script:
            virtual.QoS.append(self, message, delivery_tag)  # in-memory bookkeeping only
        else:
            super().append(message, delivery_tag)

    def restore_by_tag(self, tag: Any, client: Any = None, leftmost: bool = False) -> None:
        """kombu's, with the record decoded as plain JSON and checked: a record that is not a usable message
        is dead-lettered instead of requeued (kombu's restore raised on some, stopping the worker, and
        logged the whole message on others)."""

        def restore_transaction(pipe: Any) -> None:
            record = pipe.hget(self.unacked_key, tag)
            pipe.multi()
            self._remove_from_indices(tag, pipe)
            if not record:
                return
            try:
                payload, exchange, routing_key = loads(bytes_to_str(record))
                check(payload)
                if not isinstance(exchange, str) or not isinstance(routing_key, str):
                    raise Unusable("unacked record has no exchange and routing key")
            except (Unusable, ValueError, TypeError, RecursionError) as exc:
                error = str(exc) if isinstance(exc, Unusable) else "unacked record is not [message, exchange, key]"
                self.channel.dead_letter_entry(bytes_to_str(record), error, pipe)
                return
            self.channel._do_restore_message(payload, exchange, routing_key, pipe, leftmost)

        with self.channel.conn_or_acquire(client) as client:
            client.transaction(restore_transaction, self.unacked_key)


class Channel(kombu_redis.Channel):
    QoS = QoS
    from_transport_options = (*kombu_redis.Channel.from_transport_options,  # type: ignore[assignment]
                              "fetch_batch", "dead_letter_key")

    #: Most messages taken per BRPOP round trip (1: kombu's own behaviour). A transport option.
    fetch_batch = 1
    #: Redis list for queue entries that are not kombu messages (None: logged and dropped). A transport option.
    dead_letter_key: str | None = None
    _short_client: Any = None
    _take_more_script: Any = None

    #: Delivery tags the script recorded as unacked during the current BRPOP reply.
    recorded_by_script: frozenset[str] = frozenset()
    #: Messages of the current BRPOP reply not handed to the consumer yet (0 between replies).
    messages_in_hand = 0
    #: Every sweep scans (kombu scans on every tenth call): with leases the timeout is short, and a sweep
    #: is one ZRANGE when nothing is due.
    unacked_restore_throttle = 1

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "unacked_mutex_expire" not in self.connection.client.transport_options:
            # kombu's 300 s: a worker killed during a sweep would hold up every other sweep that long.
            self.unacked_mutex_expire = leases.lease_times(self.visibility_timeout).sweep_mutex_expire

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        # A client is only a handle on the pool; make a new one when the pool was replaced.
        if self._short_client is None or self._short_client.connection_pool is not self.pool:
            self._short_client = self._create_client()
        yield self._short_client

    def _brpop_read(self, **options: Any) -> bool:
        """kombu's handling of a BRPOP reply, delivering the further messages the script took too."""
        try:
            try:
                reply = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                # As kombu: disconnect so that the next poll reconnects.
                self.client.connection.disconnect()
                raise
            if not reply:
                raise virtual.Empty()
            key, first = bytes_to_str(reply[0]), bytes_to_str(reply[1])
            queue = key.rsplit(self.sep, 1)[0]  # without the priority suffix
            self._queue_cycle.rotate(queue)
            try:
                message = decode_entry(first)
            except Unusable as exc:
                self.dead_letter_entry(first, str(exc))
                return True
            taken = self._record_and_take_more(queue, first)
            payloads = [(first, message)]
            for item in taken or []:
                # The script records what it can read as an envelope; the full check is here.
                try:
                    payloads.append((item, decode_entry(item)))
                except Unusable as exc:
                    self._dead_letter_recorded(item, str(exc))
            # What the script recorded as unacked: QoS.append only keeps it in memory.
            self.recorded_by_script = (frozenset(p["properties"]["delivery_tag"] for _, p in payloads)
                                       if taken is not None else frozenset())
            self._deliver_all(payloads, queue)
            return True
        finally:
            self._in_poll = None  # type: ignore[assignment]
            reauth = getattr(self, "_flush_brpop_reauth", None)  # kombu >= 5.6
            if reauth is not None:
                reauth()

    def dead_letter_entry(self, entry: Any, error: str, pipe: Any = None) -> None:
        """Push a raw queue entry to the dead-letter list (with `pipe`: as part of that pipeline)."""
        if self.dead_letter_key is None:
            log.error("queue entry dropped", extra={"error": error})
            return
        if pipe is not None:
            push_dead_letter(pipe, self.dead_letter_key, entry, error, attempts=1)
        else:
            with self.conn_or_acquire() as client:
                push_dead_letter(client, self.dead_letter_key, entry, error, attempts=1)
        log.error("dead letter", extra={"error": error, "attempts": 1})

    def _dead_letter_recorded(self, entry: str, error: str, tag: Any = None) -> None:
        """Dead-letter an entry the script recorded as unacked, and forget that record, in one transaction."""
        if tag is None:
            try:
                tag = loads(entry)["properties"]["delivery_tag"]
            except Exception:  # the script records only entries with a delivery tag; nothing to forget
                tag = None
        with self.conn_or_acquire() as client, client.pipeline() as pipe:
            self.dead_letter_entry(entry, error, pipe)
            if isinstance(tag, str):
                self.qos._remove_from_indices(tag, pipe)
            pipe.execute()
        if isinstance(tag, str):
            self.qos._delivered.pop(tag, None)

    def _deliver_all(self, payloads: list[tuple[str, Any]], queue: str) -> None:
        try:
            self._deliver_each(payloads, queue)
        finally:
            self.messages_in_hand = 0

    def _deliver_each(self, payloads: list[tuple[str, Any]], queue: str) -> None:
        for number, (raw, payload) in enumerate(payloads):
            self.messages_in_hand = len(payloads) - number - 1
            try:
                self.connection._deliver(payload, queue)
            except self.connection_errors:
                # The rest are recorded as unacked but nobody holds them: back to the queue, next in line,
                # instead of waiting for the visibility timeout.
                for _, rest in reversed(payloads[number + 1:]):
                    self.qos.restore_by_tag(rest["properties"]["delivery_tag"], leftmost=True)
                raise
            except Exception as exc:
                # What one message holds must never stop the worker (kombu's hub treats any error here as
                # unrecoverable): that message goes to the dead-letter list, the others are delivered.
                # No traceback: an exception's text may quote the message.
                self._dead_letter_recorded(raw, f"delivery failed: {type(exc).__name__}",
                                           payload["properties"]["delivery_tag"])

    def _record_and_take_more(self, queue: str, first: str) -> list[str] | None:
        """The further messages taken (recorded with the first as unacked), or None: nothing recorded."""
        # kombu's path (QoS.append records the first message itself) also with a global key prefix: kombu's
        # prefixing client would prefix only the first key of the script's several.
        if self.fetch_batch <= 1 or not self.ack_emulation or self.global_keyprefix:
            return None
        room = self.qos.can_consume_max_estimate()  # prefetch count minus what is held (None: no limit)
        wanted = self.fetch_batch - 1 if room is None else max(0, min(self.fetch_batch, room) - 1)
        keys = [self.unacked_index_key, self.unacked_key,
                *(self._q_for_pri(queue, priority) for priority in self.priority_steps)]
        try:
            with self.conn_or_acquire() as client:
                if self._take_more_script is None or self._take_more_script.registered_client is not client:
                    self._take_more_script = client.register_script(_RECORD_AND_TAKE_MORE)
                reply = self._take_more_script(keys=keys, args=[wanted, time(), first])
        except self.connection_errors:
            raise
        except Exception:  # e.g. a server without Lua: kombu's path from now on
            log.warning("taking several messages at once failed; taking one at a time", exc_info=True)
            self.fetch_batch = 1
            return None
        if not reply or int(reply[0]) != 1:
            return None
        return [bytes_to_str(item) for item in reply[1:]]


class Transport(kombu_redis.Transport):
    Channel = Channel

    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        """kombu's, plus the renewal of what this worker holds, and the restore sweep every
        `sweep_every` seconds instead of kombu's 10 (unless `unacked_restore_interval` is given)."""
        options = connection.client.transport_options
        times = leases.lease_times(options.get("visibility_timeout", Channel.visibility_timeout))
        if "unacked_restore_interval" not in options:  # a copy: the dict may be the app's configuration
            connection.client.transport_options = {**options, "unacked_restore_interval": times.sweep_every}
        super().register_with_event_loop(connection, loop)
        previous = getattr(self, "lease_renewal_tref", None)
        if previous is not None:  # a reconnect registers again: one renewal timer, not one per connection
            previous.cancel()
        self.lease_renewal_tref = loop.call_repeatedly(times.renew_every, leases.renew_all, self.channels)


def forget_unacked(qos: kombu_redis.QoS, tags: Sequence[str], pipe: Any) -> None:
    """What kombu's `QoS._remove_from_indices` does for one tag, done for many in two commands (ZREM and HDEL
    take several members), where a pair of commands per message made a batch's pipeline grow with it."""
    if tags:
        pipe.zrem(qos.unacked_index_key, *tags).hdel(qos.unacked_key, *tags)


def acknowledge_all(requests: Sequence[Any]) -> None:
    """Acknowledge Celery requests; those of one Redis channel in one pipeline.

    Falls back to one acknowledgement per request (Celery's own path, which logs connection errors)
    for other transports or when the pipeline fails: an unacknowledged message is redelivered after
    the visibility timeout and applies nothing the second time."""
    pending = [r for r in requests if not r.acknowledged]
    by_qos: dict[int, tuple[Any, list[Any]]] = {}
    for request in pending:
        message = request.message
        qos = getattr(getattr(message, "channel", None), "qos", None)
        if isinstance(qos, kombu_redis.QoS) and not message.acknowledged:
            by_qos.setdefault(id(qos), (qos, []))[1].append(request)
    for qos, batch in by_qos.values():
        try:
            with qos.pipe_or_acquire() as pipe:
                forget_unacked(qos, [request.message.delivery_tag for request in batch], pipe)
                pipe.execute()
        except Exception:
            log.warning("batched acknowledgement failed; acknowledging one by one", exc_info=True)
            continue
        for request in batch:
            virtual.QoS.ack(qos, request.message.delivery_tag)  # kombu's in-memory bookkeeping
            request.message._state = "ACK"
            request.acknowledged = True
    for request in pending:
        request.acknowledge()  # a no-op for those acknowledged above
