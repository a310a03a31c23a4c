"""Generated gRPC stubs for the baton.v1 protos (made by setup.py; not checked in)."""
