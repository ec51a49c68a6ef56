"""Client side of the results service: the series wire model, :class:`ResultsClient`, series writers.

It sits below the worker SDK and the gateway (both write or delete series) and above the
registry (the client finds the results service there); the results server imports it too, for
the wire model, but nothing here imports the server.
"""

from workmesh.services.clients._errors import from_rpc_error
from workmesh.services.clients._model import (
    MAX_CHUNK_BYTES,
    Chunk,
    ReadQuery,
    SeriesData,
    SeriesKey,
    SeriesSummary,
)
from workmesh.services.clients._results import ResultsClient, Series
from workmesh.services.clients._writer import BlockingSeriesWriter, SeriesHandle, SeriesWriter
from workmesh.services.core.errors import PermissionDenied, Unauthenticated, WorkmeshError
from workmesh.services.core.limits import MAX_MESSAGE_BYTES

__all__ = [
    "MAX_CHUNK_BYTES",
    "MAX_MESSAGE_BYTES",
    "BlockingSeriesWriter",
    "Chunk",
    "PermissionDenied",
    "ReadQuery",
    "ResultsClient",
    "Series",
    "SeriesData",
    "SeriesHandle",
    "SeriesKey",
    "SeriesSummary",
    "SeriesWriter",
    "Unauthenticated",
    "WorkmeshError",
    "from_rpc_error",
]
