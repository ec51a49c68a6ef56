"""The embedded single-node registry: the subset of Consul's HTTP API workmesh uses."""
