"""A fake Cisco SSH device lab: many devices in one asyncssh process.

It is the demo's devices and the tests' devices: realistic prompts (ios, iosxe,
nxos, iosxr, asa), enable, paging, pipe filters, latency and faults, and a
JSON-lines log of every line a client sent (to prove the service stays read-only).
"""
