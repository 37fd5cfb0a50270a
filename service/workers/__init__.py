"""Device workers: the device work in processes of their own, reached over NATS.

The front (intake, policy, scheduling, replies, results) sends each device to the worker
that owns its partition; workers log in, run the commands, parse, and answer. Workers
announce themselves with heartbeats, so one started on another machine joins the same way
as the ones ``pyats-ro serve`` starts.
"""
