"""The shared core every layer builds on.

- ``errors``: the one error hierarchy and its gRPC status mapping, both directions
- ``durations``, ``env``: the one duration grammar and the one environment reader
- ``limits``: message size, terminal statuses, status and parameter-type names
- ``net``: the advertise-address rule of every service
- ``children``: child processes that die with the process that started them
- ``outcome``: the outcome of an attempt, as workers and the gateway record it
- ``streams``, ``decode``: the batched stream/outbox and safe decoding of client payloads
- ``tls``, ``auth``, ``telemetry``: transport security, callers and their scopes, observability

It imports nothing of workmesh but the generated stubs (``workmesh.v1``).
"""
