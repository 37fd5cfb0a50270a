"""A fake Cisco SSH device lab: many devices in one asyncssh process.

It is the demo's devices and the tests' devices: realistic prompts (ios, iosxe,
nxos, iosxr, asa), enable, paging, pipe filters, latency and faults (hangs,
disconnects, outputs in chunks, pauses after prompt-like lines, slow logins, a
``max_sessions`` VTY limit), generated large outputs of an exact size, and a
JSON-lines log of every line a client sent (to prove the service stays
read-only) plus session open/close events.
"""
