"""The workflow types the multi-host workers serve (``workmesh worker tests.multihost.flows:worker``).

``chaos-record`` logs each handler run to a file (how many times a job really ran) and works a
while; ``series-async`` writes time series to the results service it finds in the registry.
"""

from __future__ import annotations

from tests.chaos.flows import record
from tests.series.workflows import series_async
from workmesh.workers import Worker

worker = Worker([record, series_async], capacity=4)
