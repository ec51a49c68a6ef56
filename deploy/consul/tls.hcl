# The workmesh services serve gRPC over TLS and register their health checks with GRPCUseTLS:
# Consul verifies their certificates against the mesh's CA (mounted from the workmesh-tls volume).
# Only outgoing checks use it; Consul's own HTTP API and RPC stay as server.hcl configures them.
tls {
  defaults {
    ca_file = "/etc/workmesh/tls/ca.crt"
  }
}
