"""Which worker owns which device: a fixed number of partitions, each placed on the live
worker that ranks it highest (rendezvous hashing).

- A device's partition is a stable hash of ``host:port`` (not Python's ``hash``, which
  changes per process), so every front and worker computes the same map from the same
  set of live workers, with no coordination.
- Rendezvous hashing moves only what must move: a new worker takes about ``1/N`` of the
  partitions and nothing moves between the others; a worker that leaves gives only its
  own partitions away.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable

PARTITIONS = 256


def _score(*parts: str) -> int:
    return int.from_bytes(hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest(), "big")


def partition_of(hostname: str, port: int, partitions: int = PARTITIONS) -> int:
    return _score(hostname.lower(), str(port)) % partitions


class PartitionMap:
    """The owner of every partition for one set of live workers (immutable)."""

    def __init__(self, workers: Iterable[str], partitions: int = PARTITIONS) -> None:
        self.workers = tuple(sorted(set(workers)))
        self.partitions = partitions
        self._owners: tuple[str, ...] = tuple(self._rank(p) for p in range(partitions)) if self.workers else ()

    def _rank(self, partition: int) -> str:
        """The worker that scores highest for this partition."""
        return max(self.workers, key=lambda worker: _score(str(partition), worker))

    def owner(self, hostname: str, port: int) -> str | None:
        """The worker for this device; None while no worker is live."""
        if not self._owners:
            return None
        return self._owners[partition_of(hostname, port, self.partitions)]

    def owner_of_partition(self, partition: int) -> str | None:
        return self._owners[partition] if self._owners else None

    def counts(self) -> dict[str, int]:
        """Partitions per worker (every live worker listed, even with none)."""
        counted = Counter(self._owners)
        return {worker: counted.get(worker, 0) for worker in self.workers}

    def moved(self, other: PartitionMap) -> int:
        """How many partitions have another owner in ``other``."""
        if not self._owners or not other._owners:
            return self.partitions if self._owners or other._owners else 0
        return sum(1 for a, b in zip(self._owners, other._owners, strict=True) if a != b)
