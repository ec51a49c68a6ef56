"""Run a worker in its own process for the gateway tests: ``python -m tests.gateway.worker_main
REGISTRY_ADDR module:attr [capacity]``; SIGTERM drains it, SIGKILL is a crash."""

from __future__ import annotations

import asyncio
import logging
import sys

from workmesh.registry import RegistryConfig
from workmesh.workers import WorkerConfig, run_worker

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    capacity = int(sys.argv[3]) if len(sys.argv) > 3 else None
    asyncio.run(
        run_worker(
            sys.argv[2], WorkerConfig(registry=RegistryConfig(address=sys.argv[1]), capacity=capacity, drain_grace=5.0)
        )
    )
