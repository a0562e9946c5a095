"""Everything that knows Celery or kombu on the worker's side: the app, thin tasks, consumer-side batching,
the Redis transport, the consumer that dead-letters, task events, the message decoder.

`celery -A customer_updates.worker` finds the app here. The worker calls into the application only through
`customer_updates.services` (worker_messages, awards, publish), so a Celery or kombu upgrade touches this
package alone; the private hooks it relies on are listed in `worker/hooks.py`.
"""

from customer_updates.worker.celery_app import app

__all__ = ["app"]
