"""Names on the broker that producers, workers and operators' tools agree on (the wire contract, DESIGN §3)."""

from __future__ import annotations

UPDATES_QUEUE = "customer_updates"
SIDE_EFFECTS_QUEUE = "customer_updates.side_effects"
QUEUES = (UPDATES_QUEUE, SIDE_EFFECTS_QUEUE)

APPLY_TASK = "customer_updates.apply_updates"
AWARD_TASK = "customer_updates.award_points"
RELAY_TASK = "customer_updates.relay_outbox"
PURGE_TASK = "customer_updates.purge_records"

# RabbitMQ only: where the quorum queues dead-letter what they give up on (rejected, over the delivery limit);
# the worker moves it to the Redis dead-letter list (worker/amqp_dead_letters.py).
DEAD_LETTER_EXCHANGE = "customer_updates.dead_letter"
DEAD_LETTER_QUEUE = "customer_updates.dead_lettered"
