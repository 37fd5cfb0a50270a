"""The partition map: stable, balanced, and moving only what must move."""

from __future__ import annotations

import pytest

from service.workers.directory import Membership
from service.workers.partition import PARTITIONS, PartitionMap, partition_of
from service.workers.protocol import Heartbeat

pytestmark = pytest.mark.unit

DEVICES = [(f"10.0.{i // 250}.{i % 250}", 22 + i % 3) for i in range(2000)]


def test_the_same_device_always_has_the_same_owner_whatever_the_order_of_workers() -> None:
    a = PartitionMap(["w1", "w2", "w3"])
    b = PartitionMap(["w3", "w1", "w2"])
    assert all(a.owner(h, p) == b.owner(h, p) for h, p in DEVICES)
    assert partition_of("R1.example", 22) == partition_of("r1.example", 22)  # hostnames are case-insensitive
    assert len({partition_of(h, p) for h, p in DEVICES}) > PARTITIONS * 0.9


def test_devices_of_one_host_on_many_ports_are_spread_and_every_process_computes_the_same_map() -> None:
    ports = range(2200, 2264)  # one address, many ports: the lab, or a console server
    assert len({partition_of("127.0.0.1", port) for port in ports}) > 32
    # pinned: every front and worker, on any host and Python, must agree (a per-process hash
    # such as Python's hash() would move devices between runs)
    assert partition_of("127.0.0.1", 22) == 118
    assert partition_of("127.0.0.1", 2201) == 232
    assert partition_of("10.0.0.1", 22) == 50
    assert partition_of("Router.Example.NET", 22) == partition_of("router.example.net", 22) == 219


def test_partitions_are_spread_over_the_workers() -> None:
    counts = PartitionMap([f"w{i}" for i in range(4)]).counts()
    assert sum(counts.values()) == PARTITIONS
    assert min(counts.values()) >= PARTITIONS / 4 * 0.6, counts


def test_a_new_worker_takes_partitions_only_for_itself() -> None:
    before = PartitionMap(["w1", "w2", "w3"])
    after = PartitionMap(["w1", "w2", "w3", "w4"])
    for partition in range(PARTITIONS):
        old, new = before.owner_of_partition(partition), after.owner_of_partition(partition)
        assert new in (old, "w4")  # nothing moves between the old workers
    assert 0.15 * PARTITIONS <= before.moved(after) <= 0.35 * PARTITIONS


def test_a_worker_that_leaves_gives_away_only_its_own_partitions() -> None:
    before = PartitionMap(["w1", "w2", "w3"])
    after = PartitionMap(["w1", "w3"])
    for partition in range(PARTITIONS):
        old = before.owner_of_partition(partition)
        if old != "w2":
            assert after.owner_of_partition(partition) == old
    assert before.moved(after) == before.counts()["w2"]


def test_no_worker_no_owner() -> None:
    assert PartitionMap([]).owner("r1", 22) is None


def beat(worker: str, leaving: bool = False, instance: str = "i1") -> Heartbeat:
    return Heartbeat(worker=worker, instance=instance, host="h", pid=1, version="v", capacity=4, leaving=leaving)


def test_membership_follows_heartbeats_silence_and_leaving() -> None:
    now = [0.0]
    members = Membership(expiry=3.0, clock=lambda: now[0])
    assert members.beat(beat("w1")) == []  # joined: the map changed, nobody left
    assert members.beat(beat("w2")) == []
    assert members.beat(beat("w1")) is None  # a beat of a known worker changes nothing
    assert set(members.map.workers) == {"w1", "w2"}
    now[0] = 2.0
    members.beat(beat("w1"))
    now[0] = 3.5  # w2 silent for 3.5 s, w1 for 1.5 s
    assert members.expire() == ["w2"]
    assert members.map.workers == ("w1",)
    assert members.beat(beat("w1", leaving=True)) == ["w1"]
    assert members.map.owner("r1", 22) is None
    assert members.beat(beat("w1", leaving=True)) is None  # already gone


def test_a_worker_restarted_under_its_id_is_another_instance() -> None:
    members = Membership(expiry=3.0, clock=lambda: 0.0)
    members.beat(beat("w1"))
    before = members.map
    assert members.beat(beat("w1", instance="i2")) == ["w1"]  # the old instance's work is lost
    assert members.map.workers == before.workers == ("w1",)
    assert members.beat(beat("w1", leaving=True, instance="i1")) is None  # the old one leaving late: ignored
    assert members.map.workers == ("w1",)
