"""The workmesh services: the gateway, the results service, the `workmesh` CLI and telemetry."""
