"""The shared core every layer builds on: errors, durations, streams, telemetry.

It imports nothing of workmesh but the generated stubs (``workmesh.v1``).
"""
