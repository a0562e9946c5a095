"""Throughput benchmark: customer-updates against a plain one-task-per-update Celery worker.

Run `python -m bench run --help`; bench/METHOD.md describes the workload and the figures.
"""
