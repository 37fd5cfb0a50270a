"""SSH under Unicon: the two spawn backends and what the in-process one is made of.

- ``options``: one connection's SSH options, typed (``SshOptions``), and the OpenSSH
  command line the pty backend runs;
- ``pty_backend``: Unicon's OpenSSH (pty) backend with our reads;
- ``paramiko_backend``: the in-process backend; it takes ``SshOptions`` as they are;
  - ``target``: the options completed by the ssh_config file (``config``), jump chain included;
  - ``connect``: TCP, forwarding, handshake and keys; ``known_hosts``: host keys;
  - ``jumps``: the jump host sessions one device layer shares (``JumpHosts``);
  - ``paramiko_patches``: paramiko's transport with the fixes we need;
  - ``legacy``: legacy algorithms, per transport;
- ``errors``: what can fail, as types.

Importing this package loads nothing else; paramiko is loaded only with its backend.
"""
