"""Tools for development and tests.

The fake device lab, a local nats-server, the service as a child process, config docs.
"""
