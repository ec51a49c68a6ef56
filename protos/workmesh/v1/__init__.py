"""Generated gRPC stubs of the workmesh.v1 protos (see protos/generate.py)."""
