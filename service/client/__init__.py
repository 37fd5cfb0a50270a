"""The requester side of the bus: connect, execute, stream, history, large outputs.

Used by the CLI and by any front door; it never imports the service's own pipeline.
"""
