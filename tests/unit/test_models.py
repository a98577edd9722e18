"""The shared typed models: peer databags <-> dataclasses, and unit names <-> member names."""

from __future__ import annotations

import pytest

from models import ClusterInfo, JoinOffer, JoinQueue, UnitInfo, server_name_of, unit_number


def test_cluster_info_dumps_hyphenated_keys_and_loads_back_equal():
    info = ClusterInfo(
        cluster_address="10.0.0.1:8443",
        certificate="PEM",
        fingerprint="ab" * 32,
        lxd_version="5.21.2",
        bootstrap_unit="lxd-cluster/0",
        issuer="lxd-cluster/0",
        removed="lxd-cluster-3",
    )
    bag: dict[str, str] = {}
    info.dump(bag)
    assert bag == {
        "cluster-address": "10.0.0.1:8443",
        "certificate": "PEM",
        "fingerprint": "ab" * 32,
        "lxd-version": "5.21.2",
        "bootstrap-unit": "lxd-cluster/0",
        "issuer": "lxd-cluster/0",
        "removed": "lxd-cluster-3",
    }
    assert ClusterInfo.load(bag) == info


def test_unit_info_round_trips_through_a_databag():
    me = UnitInfo(
        server_name="lxd-cluster-1",
        address="[fd00::2]:8443",
        lxd_version="5.21.2",
        member="cd" * 32,
        join_failed="j1",
        join_error="Failed to join cluster: token expired",
    )
    bag: dict[str, str] = {}
    me.dump(bag)
    assert bag["server-name"] == "lxd-cluster-1" and bag["join-error"].endswith("token expired")
    assert UnitInfo.load(bag) == me


def test_the_join_queue_round_trips_through_a_databag_in_order():
    offers = [JoinOffer("lxd-cluster/2", "secret:abc", "0123456789ab"), JoinOffer("lxd-cluster/10", "secret:d", "e")]
    bag: dict[str, str] = {}
    JoinQueue.of(offers).dump(bag)
    assert list(bag) == ["join-queue"]
    assert JoinQueue.load(bag).offers == offers


def test_an_unreadable_queue_is_an_empty_one():
    assert JoinQueue.load({"join-queue": "not json"}).offers == []


def test_dump_removes_keys_whose_value_became_empty_and_keeps_foreign_keys():
    bag = {"server-name": "lxd-cluster-1", "join-failed": "j1", "join-error": "boom", "egress-subnets": "x"}
    UnitInfo(server_name="lxd-cluster-1", member="ff" * 32).dump(bag)
    assert bag == {"server-name": "lxd-cluster-1", "member": "ff" * 32, "egress-subnets": "x"}


def test_an_empty_queue_clears_the_offers_but_not_the_cluster_data():
    bag = {"cluster-address": "10.0.0.1:8443", "join-queue": '[["lxd-cluster/1","secret:x","j1"]]'}
    JoinQueue().dump(bag)
    assert bag == {"cluster-address": "10.0.0.1:8443"}


def test_load_of_an_empty_databag_gives_empty_fields():
    assert UnitInfo.load({}) == UnitInfo()
    assert not UnitInfo.load({}).is_member
    assert not ClusterInfo.load({}).formed


def test_a_unit_is_a_member_once_it_records_a_fingerprint():
    assert UnitInfo.load({"member": "ab" * 32}).is_member


@pytest.mark.parametrize("missing", ["cluster-address", "certificate", "fingerprint"])
def test_a_cluster_is_formed_only_with_address_certificate_and_fingerprint(missing):
    bag = {"cluster-address": "10.0.0.1:8443", "certificate": "PEM", "fingerprint": "ab" * 32}
    assert ClusterInfo.load(bag).formed
    del bag[missing]
    assert not ClusterInfo.load(bag).formed


@pytest.mark.parametrize(
    "unit, server",
    [
        ("lxd-cluster/0", "lxd-cluster-0"),
        ("lxd-cluster/12", "lxd-cluster-12"),
        ("my-lxd/3", "my-lxd-3"),
    ],
)
def test_server_name_of_a_unit_is_the_member_name_lxd_shows(unit, server):
    assert server_name_of(unit) == server


@pytest.mark.parametrize("unit, number", [("lxd-cluster/0", 0), ("lxd-cluster/12", 12), ("a-b-c/7", 7)])
def test_unit_number(unit, number):
    assert unit_number(unit) == number


def test_unit_numbers_order_numerically_not_lexically():
    assert min(["lxd-cluster/10", "lxd-cluster/9"], key=unit_number) == "lxd-cluster/9"
