"""The flow through the charm: each event routed to the one reconcile, which stops where it must."""

from __future__ import annotations

import pytest
from charms.lxd_cluster.v0.lxd_cluster import fingerprint_of as certificate_fingerprint
from config_cases import BAD_CONFIG, DEFAULTS, OPTIONS, case_id
from ops import testing
from states import REL, ctx, make_state, published

from config import ConfigError, load_config


# -- install -> bootstrap -> member ----------------------------------------------------------------
def test_leader_on_a_fresh_lxd_bootstraps_and_publishes(lxd, cluster_pem):
    out = ctx().run(ctx().on.install(), make_state(leader=True, planned_units=1))
    boot = lxd.preseeds[0]
    assert boot["config"]["core.https_address"] == "10.0.0.1:8443"
    assert boot["cluster"] == {"server_name": "lxd-cluster-0", "enabled": True}
    assert boot["storage_pools"][0]["driver"] == "zfs"
    app = out.get_relation(REL).local_app_data
    assert app["cluster-address"] == "10.0.0.1:8443"
    assert app["certificate"] == cluster_pem
    assert app["fingerprint"] == certificate_fingerprint(cluster_pem)
    assert app["lxd-version"] == "5.21.2"
    assert app["bootstrap-unit"] == "lxd-cluster/0"
    assert out.unit_status == testing.ActiveStatus(
        "member lxd-cluster-0 of 1 (database), fully operational; fewer than 3 members: no database redundancy"
    )
    assert out.workload_version == "5.21.2"


def test_a_non_leader_on_a_fresh_model_waits_for_the_leader_and_announces_itself(lxd):
    out = ctx(1).run(ctx(1).on.install(), make_state(ip="10.0.0.2"))
    assert out.unit_status == testing.WaitingStatus("waiting for the leader to bootstrap the cluster")
    unit = dict(out.get_relation(REL).local_unit_data)
    assert float(unit.pop("announced")) > 0
    membership = next(s for s in out.secrets if s.label == "membership")
    assert unit == {
        "server-name": "lxd-cluster-1",
        "address": "10.0.0.2:8443",
        "lxd-version": "5.21.2",
        "lxd-source": "deb",
        "member-secret": membership.id,  # not a member yet: says so to the unit that joins after it
        "network-checked": "bridged:br0",  # this host can take the chosen network (the leader reads it)
    }
    assert membership.latest_content == {"member": "no"} and membership.remote_grants
    assert lxd.mutations() == []
    assert out.workload_version == "5.21.2"


def test_a_unit_waits_for_its_turn(lxd, cluster_pem):
    out = ctx(2).run(
        ctx(2).on.config_changed(),
        make_state(ip="10.0.0.3", app=published(cluster_pem, **{"join-unit": "lxd-cluster/1"})),
    )
    assert out.unit_status == testing.WaitingStatus("waiting for a join credential (joins go one at a time)")
    assert out.get_relation(REL).local_unit_data["server-name"] == "lxd-cluster-2"
    assert lxd.preseeds == []


def test_after_an_lxd_refresh_the_leader_republishes_its_version(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    lxd.version = "5.21.3"  # snap refresh of the whole cluster
    out = ctx().run(ctx().on.update_status(), make_state(leader=True, app=published(cluster_pem)))
    assert out.get_relation(REL).local_app_data["lxd-version"] == "5.21.3"
    assert out.unit_status.name == "active"


# -- stops -----------------------------------------------------------------------------------------
def test_version_mismatch_blocks_naming_both_versions(lxd, cluster_pem):
    lxd.version = "5.0.2"
    out = ctx(1).run(ctx(1).on.config_changed(), make_state(app=published(cluster_pem)))
    assert out.unit_status.name == "blocked"
    assert "5.0.2" in out.unit_status.message and "5.21.2" in out.unit_status.message
    assert lxd.mutations() == []


def test_unit_removed_by_action_does_not_rejoin(lxd, cluster_pem):
    out = ctx(1).run(ctx(1).on.config_changed(), make_state(app=published(cluster_pem, removed="lxd-cluster-1")))
    assert "juju remove-unit" in out.unit_status.message
    assert lxd.mutations() == []


# -- bad config ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "config, words",
    [
        ({"storage-driver": "ceph"}, "storage-driver"),
        ({"cluster-port": 0}, "cluster-port"),
        ({"snap-channel": "bad channel"}, "snap-channel"),
        ({"maas-api-url": "http://m/MAAS"}, "maas-api-key"),
        ({"bridge": "no such bridge"}, "bridge"),
    ],
)
def test_config_errors_block_and_change_nothing(lxd, config, words):
    out = ctx().run(ctx().on.config_changed(), make_state(leader=True, config=config))
    assert out.unit_status.name == "blocked" and words in out.unit_status.message
    assert lxd.mutations() == []


def _juju_can_send(changes: dict) -> bool:
    """Juju type-checks config before the charm sees it; those values cannot reach the charm."""
    kinds = {"string": str, "int": int, "boolean": bool, "secret": str}
    return all(
        v is not None
        and isinstance(v, kinds[OPTIONS[k]["type"]])
        and (OPTIONS[k]["type"] != "secret" or v.startswith("secret:"))
        for k, v in changes.items()
    )


def _as_juju_would(changes: dict) -> dict:
    return {k: ("secret:" + "c" * 20 if OPTIONS[k]["type"] == "secret" else v) for k, v in changes.items()}


JUJU_BAD_CONFIG = [(_as_juju_would(c), o) for c, o in BAD_CONFIG if _juju_can_send(c)]


@pytest.mark.parametrize("changes, option", JUJU_BAD_CONFIG, ids=[case_id(c) for c in JUJU_BAD_CONFIG])
@pytest.mark.parametrize("leader", [True, False])
def test_every_config_error_blocks_with_its_message_and_touches_nothing(lxd, host, changes, option, leader):
    (host.bin / "lxd").unlink()  # not even the install may run
    host.start_snapd()
    with pytest.raises(ConfigError) as expected:
        load_config({**DEFAULTS, **changes})
    out = ctx().run(ctx().on.config_changed(), make_state(leader=leader, config=changes))
    assert out.unit_status == testing.BlockedStatus(str(expected.value))
    assert option in out.unit_status.message
    assert lxd.calls == [] and host.calls == [] and host.state["api"] == []


def test_enough_bad_config_reaches_the_charm():
    assert len(JUJU_BAD_CONFIG) >= 15
