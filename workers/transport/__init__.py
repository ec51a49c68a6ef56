"""How a worker talks to gateways: the gRPC servicer and the multiplexed Session stream."""
