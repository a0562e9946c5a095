"""What producers and workers share: queue and task names, the Celery configuration a producer sends with,
sending messages and their masking, results, events, dead letters and request-id claims on Redis.

It imports nothing of `customer_updates.worker`, so a producer process builds no worker app and connects no
worker signal.
"""
