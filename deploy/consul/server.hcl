# Single Consul server for the docker-compose production set (one node; for a cluster, run three
# or five servers with bootstrap_expect set to their number and retry_join listing them).
datacenter       = "dc1"
data_dir         = "/consul/data"
server           = true
bootstrap_expect = 1
log_level        = "INFO"

# The HTTP API and UI listen on every interface of the container: the services, `docker compose`
# port mapping and operators reach it on :8500.
client_addr = "0.0.0.0"
# Cluster traffic on the container's own address (a wildcard bind address is refused by Consul).
bind_addr = "{{ GetInterfaceIP \"eth0\" }}"

ui_config {
  enabled = true
}

ports {
  http     = 8500
  dns      = 8600
  server   = 8300
  serf_lan = 8301
  grpc     = 8502
}

# workmesh registers GRPC health checks only; script checks stay off.
enable_script_checks = false
# No calls home from a production cluster.
disable_update_check = true
