"""State-transition tests of the charm: one event, a fake LXD, assertions on the output state."""

from __future__ import annotations

import dataclasses
import json

import pytest
from config_cases import BAD_CONFIG, DEFAULTS, OPTIONS, case_id
from fake_lxd import FakeLXD, make_token
from ops import testing

import charm
from config import ConfigError, load_config
from workload import DeviceState, Instance, Member, certificate_fingerprint

REL = 1


@pytest.fixture
def lxd(cluster_pem, monkeypatch) -> FakeLXD:
    fake = FakeLXD(cluster_pem)
    monkeypatch.setattr(charm, "LXD", lambda: fake)
    return fake


def ctx(uid: int = 0) -> testing.Context:
    return testing.Context(charm.LXDClusterCharm, unit_id=uid)


def published(pem: str, **extra: str) -> dict[str, str]:
    return {"cluster-address": "10.0.0.1:8443", "certificate": pem,
            "fingerprint": certificate_fingerprint(pem), "lxd-version": "5.21.2",
            "bootstrap-unit": "lxd-cluster/0", **extra}


def announced(uid: int, **extra: str) -> dict[str, str]:
    return {"server-name": f"lxd-cluster-{uid}", "address": f"10.0.0.{uid + 1}:8443",
            "lxd-version": "5.21.2", **extra}


def make_state(*, leader=False, ip="10.0.0.1", app=None, unit=None, peers=None, config=None,
               secrets=(), storages=(), planned_units=3) -> testing.State:
    relation = testing.PeerRelation("cluster", id=REL, local_app_data=app or {},
                                    local_unit_data=unit or {}, peers_data=peers or {})
    network = testing.Network("cluster", bind_addresses=[testing.BindAddress([testing.Address(ip)])])
    return testing.State(leader=leader, relations=[relation], networks=[network],
                         config=config or {}, secrets=list(secrets), storages=list(storages),
                         planned_units=planned_units)


def databags(out: testing.State) -> str:
    rel = out.get_relation(REL)
    return json.dumps([rel.local_app_data, rel.local_unit_data])


# -- bootstrap ------------------------------------------------------------------------------
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
    assert out.unit_status == testing.ActiveStatus("member lxd-cluster-0 of 1 (database), fully operational; "
                                                   "fewer than 3 members: no database redundancy")
    assert out.workload_version == "5.21.2"


def test_a_member_never_bootstraps_or_joins_again(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    for leader in (True, False):
        ctx().run(ctx().on.config_changed(), make_state(leader=leader, app=published(cluster_pem)))
    assert lxd.preseeds == []


def test_new_leader_with_a_published_cluster_does_not_bootstrap(lxd, cluster_pem):
    out = ctx(1).run(ctx(1).on.leader_elected(), make_state(leader=True, ip="10.0.0.2", app=published(cluster_pem)))
    assert lxd.preseeds == []
    assert out.unit_status.name == "waiting"


def test_new_leader_whose_peer_is_already_a_member_does_not_bootstrap(lxd, cluster_pem):
    peers = {0: announced(0, member=certificate_fingerprint(cluster_pem))}
    out = ctx(1).run(ctx(1).on.leader_elected(), make_state(leader=True, ip="10.0.0.2", peers=peers))
    assert lxd.preseeds == []
    assert "already a cluster member" in out.unit_status.message


# -- credentials ----------------------------------------------------------------------------
def test_leader_issues_one_token_in_an_app_secret_never_in_a_databag(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    peers = {1: announced(1), 2: announced(2)}
    state = make_state(leader=True, app=published(cluster_pem), peers=peers)
    out = ctx().run(ctx().on.relation_changed(state.get_relation(REL), remote_unit=1), state)
    app = out.get_relation(REL).local_app_data
    assert app["join-unit"] == "lxd-cluster/1"  # the lowest-numbered waiting unit, only one
    secret = next(s for s in out.secrets if s.id == app["join-secret"] or s.label == "join-lxd-cluster-1")
    assert secret.owner == "app"
    content = secret.latest_content
    assert content["kind"] == "token" and content["value"] == lxd.tokens["lxd-cluster-1"]
    assert list(lxd.tokens) == ["lxd-cluster-1"]
    assert lxd.tokens["lxd-cluster-1"] not in databags(out)


def test_leader_without_join_tokens_hands_over_a_trust_password(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    lxd.extensions.discard("clustering_join_token")
    out = ctx().run(ctx().on.update_status(),
                    make_state(leader=True, app=published(cluster_pem), peers={1: announced(1)}))
    secret = next(s for s in out.secrets if s.label == "join-lxd-cluster-1")
    assert secret.latest_content["kind"] == "password"
    assert secret.latest_content["value"] == lxd.config["core.trust_password"]
    assert lxd.config["core.trust_password"] not in databags(out)


def test_next_joiner_gets_a_credential_once_the_first_is_a_member(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1")
    first = testing.Secret({"kind": "token", "value": "old"}, owner="app", label="join-lxd-cluster-1")
    app = published(cluster_pem, **{"join-unit": "lxd-cluster/1", "join-secret": first.id, "join-id": "abc"})
    fp = certificate_fingerprint(cluster_pem)
    peers = {1: announced(1, member=fp), 2: announced(2)}
    out = ctx().run(ctx().on.update_status(), make_state(leader=True, app=app, peers=peers, secrets=[first]))
    data = out.get_relation(REL).local_app_data
    assert data["join-unit"] == "lxd-cluster/2"
    assert all(s.label != "join-lxd-cluster-1" for s in out.secrets)  # the spent one is removed


def test_an_outstanding_credential_is_not_reissued(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    first = testing.Secret({"kind": "token", "value": "old"}, owner="app", label="join-lxd-cluster-1")
    app = published(cluster_pem, **{"join-unit": "lxd-cluster/1", "join-secret": first.id, "join-id": "abc"})
    ctx().run(ctx().on.update_status(),
              make_state(leader=True, app=app, peers={1: announced(1), 2: announced(2)}, secrets=[first]))
    assert lxd.tokens == {}


def test_a_reported_failed_join_gets_a_fresh_credential(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    first = testing.Secret({"kind": "token", "value": "old"}, owner="app", label="join-lxd-cluster-1")
    app = published(cluster_pem, **{"join-unit": "lxd-cluster/1", "join-secret": first.id, "join-id": "abc"})
    peers = {1: announced(1, **{"join-failed": "abc", "join-error": "token expired"})}
    out = ctx().run(ctx().on.update_status(), make_state(leader=True, app=app, peers=peers, secrets=[first]))
    data = out.get_relation(REL).local_app_data
    assert data["join-unit"] == "lxd-cluster/1" and data["join-id"] != "abc"
    assert next(s for s in out.secrets if s.label == "join-lxd-cluster-1").latest_content["value"] == \
        lxd.tokens["lxd-cluster-1"]


def test_a_leader_that_is_not_a_member_appoints_a_member_to_issue_for_it(lxd, cluster_pem):
    fp = certificate_fingerprint(cluster_pem)
    state = make_state(leader=True, ip="10.0.0.3", app=published(cluster_pem, issuer="lxd-cluster/0"),
                       peers={0: announced(0, member=fp), 1: announced(1, member=fp)})
    out = ctx(2).run(ctx(2).on.leader_elected(), state)
    assert out.get_relation(REL).local_app_data["issuer"] == "lxd-cluster/0"  # lowest member
    assert lxd.preseeds == [] and lxd.tokens == {}
    assert out.unit_status.name == "waiting"


def test_an_appointed_member_issues_from_its_own_databag_with_a_granted_unit_secret(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-1", "lxd-cluster-0")
    fp = certificate_fingerprint(cluster_pem)
    state = make_state(ip="10.0.0.2", app=published(cluster_pem, issuer="lxd-cluster/1"),
                       unit=announced(1, member=fp), peers={0: announced(0, member=fp), 2: announced(2)})
    out = ctx(1).run(ctx(1).on.update_status(), state)
    offer = out.get_relation(REL).local_unit_data
    assert offer["join-unit"] == "lxd-cluster/2"
    secret = next(s for s in out.secrets if s.label == "join-lxd-cluster-2")
    assert secret.owner == "unit" and secret.remote_grants  # granted over the peer relation
    assert secret.latest_content["value"] == lxd.tokens["lxd-cluster-2"]
    assert lxd.tokens["lxd-cluster-2"] not in databags(out)


def test_a_joiner_takes_the_credential_the_issuing_member_offers(lxd, cluster_pem):
    token = make_token("lxd-cluster-2", cluster_pem)
    secret = testing.Secret({"kind": "token", "value": token}, owner=None)
    fp = certificate_fingerprint(cluster_pem)
    issuer = announced(1, member=fp, **{"join-unit": "lxd-cluster/2", "join-secret": secret.id, "join-id": "u1"})
    state = make_state(leader=True, ip="10.0.0.3", app=published(cluster_pem, issuer="lxd-cluster/1"),
                       peers={0: announced(0), 1: issuer}, secrets=[secret])  # 1 is the only member
    ctx(2).run(ctx(2).on.relation_changed(state.get_relation(REL), remote_unit=1), state)
    assert lxd.preseeds[0]["cluster"]["cluster_token"] == token


# -- join -----------------------------------------------------------------------------------
def joiner_state(lxd: FakeLXD, pem: str, **kw) -> testing.State:
    token = make_token("lxd-cluster-1", pem)
    secret = testing.Secret({"kind": "token", "value": token}, owner=None)
    app = published(pem, **{"join-unit": "lxd-cluster/1", "join-secret": secret.id, "join-id": "j1"})
    app.update(kw.pop("app_extra", {}))
    lxd.devices["/dev/vdc"] = DeviceState("/dev/vdc", exists=True, is_block=True)
    return make_state(ip="10.0.0.2", app=app, secrets=[secret], config={"storage-device": "/dev/vdc"}, **kw)


def test_joiner_applies_a_join_preseed_with_its_own_address_and_device(lxd, cluster_pem):
    state = joiner_state(lxd, cluster_pem)
    token = make_token("lxd-cluster-1", cluster_pem)
    out = ctx(1).run(ctx(1).on.secret_changed(next(iter(state.secrets))), state)
    assert lxd.preseeds == [{"cluster": {
        "enabled": True, "server_name": "lxd-cluster-1", "server_address": "10.0.0.2:8443",
        "cluster_address": "10.0.0.1:8443", "cluster_certificate": cluster_pem, "cluster_token": token,
        "member_config": [{"entity": "storage-pool", "name": "local", "key": "source", "value": "/dev/vdc"}],
    }}]
    unit = out.get_relation(REL).local_unit_data
    assert unit["member"] == certificate_fingerprint(cluster_pem)
    assert token not in databags(out)


def test_joiner_refuses_a_certificate_that_does_not_match_its_fingerprint(lxd, cluster_pem):
    state = joiner_state(lxd, cluster_pem, app_extra={"fingerprint": "00" * 32})
    out = ctx(1).run(ctx(1).on.config_changed(), state)
    assert out.unit_status.name == "blocked" and "fingerprint" in out.unit_status.message
    assert lxd.preseeds == []


def test_a_failed_join_is_reported_for_a_new_credential(lxd, cluster_pem):
    state = joiner_state(lxd, cluster_pem)
    lxd.fail_next_preseed = "Failed to join cluster: token expired"
    out = ctx(1).run(ctx(1).on.config_changed(), state)
    unit = out.get_relation(REL).local_unit_data
    assert unit["join-failed"] == "j1" and "token expired" in unit["join-error"]
    assert out.unit_status.name == "waiting"


def test_a_unit_waits_for_its_turn(lxd, cluster_pem):
    out = ctx(2).run(ctx(2).on.config_changed(),
                     make_state(ip="10.0.0.3", app=published(cluster_pem, **{"join-unit": "lxd-cluster/1"})))
    assert out.unit_status == testing.WaitingStatus("waiting for a join credential (joins go one at a time)")
    assert out.get_relation(REL).local_unit_data["server-name"] == "lxd-cluster-2"
    assert lxd.preseeds == []


def test_version_mismatch_blocks_naming_both_versions(lxd, cluster_pem):
    lxd.version = "5.0.2"
    out = ctx(1).run(ctx(1).on.config_changed(), make_state(app=published(cluster_pem)))
    assert out.unit_status.name == "blocked"
    assert "5.0.2" in out.unit_status.message and "5.21.2" in out.unit_status.message
    assert lxd.mutations() == []


def test_unit_removed_by_action_does_not_rejoin(lxd, cluster_pem):
    out = ctx(1).run(ctx(1).on.config_changed(),
                     make_state(app=published(cluster_pem, removed="lxd-cluster-1")))
    assert "juju remove-unit" in out.unit_status.message
    assert lxd.mutations() == []


# -- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("config, words", [
    ({"storage-driver": "ceph"}, "storage-driver"),
    ({"cluster-port": 0}, "cluster-port"),
    ({"snap-channel": "bad channel"}, "snap-channel"),
    ({"maas-api-url": "http://m/MAAS"}, "maas-api-key"),
    ({"bridge": "no such bridge"}, "bridge"),
])
def test_config_errors_block_and_change_nothing(lxd, config, words):
    out = ctx().run(ctx().on.config_changed(), make_state(leader=True, config=config))
    assert out.unit_status.name == "blocked" and words in out.unit_status.message
    assert lxd.mutations() == []


@pytest.mark.parametrize("setup, words", [
    (lambda f: f.storage_drivers.discard("zfs"), "zfsutils-linux"),
    (lambda f: f.networks.pop("br0"), "bridge br0 does not exist"),
    (lambda f: f.networks.update(br0="physical"), "not a bridge"),
])
def test_preflight_blocks_before_anything_changes(lxd, setup, words):
    setup(lxd)
    out = ctx().run(ctx().on.install(), make_state(leader=True))
    assert out.unit_status.name == "blocked" and words in out.unit_status.message
    assert lxd.mutations() == []


@pytest.mark.parametrize("device, words", [
    (DeviceState("/dev/vdb", exists=False), "does not exist"),
    (DeviceState("/dev/vdb", exists=True, is_block=False), "not a block device"),
    (DeviceState("/dev/vdb", exists=True, is_block=True, mounted=True), "is mounted"),
    (DeviceState("/dev/vdb", exists=True, is_block=True, signatures=("ext4",)), "wipe-storage-device=true"),
])
def test_unusable_devices_block_and_are_never_touched(lxd, device, words):
    lxd.devices["/dev/vdb"] = device
    out = ctx().run(ctx().on.install(), make_state(leader=True, config={"storage-device": "/dev/vdb"}))
    assert out.unit_status.name == "blocked" and words in out.unit_status.message
    assert lxd.wiped == [] and lxd.preseeds == []


def test_with_consent_a_used_device_is_wiped_then_used(lxd):
    lxd.devices["/dev/vdb"] = DeviceState("/dev/vdb", exists=True, is_block=True, signatures=("btrfs",))
    ctx().run(ctx().on.install(), make_state(
        leader=True, config={"storage-device": "/dev/vdb", "wipe-storage-device": True}))
    assert lxd.wiped == ["/dev/vdb"]
    assert lxd.preseeds[0]["storage_pools"][0]["config"] == {"source": "/dev/vdb"}
    assert lxd.calls.index("wipe_device") < lxd.calls.index("apply_preseed")


def test_juju_storage_wins_over_the_configured_device(lxd):
    storage = testing.Storage("local")
    context = ctx()
    location = str(storage.get_filesystem(context))
    lxd.devices[location] = DeviceState(location, exists=True, is_block=True)
    context.run(context.on.storage_attached(storage), make_state(
        leader=True, storages=[storage], config={"storage-device": "/dev/vdb"}))
    assert lxd.preseeds[0]["storage_pools"][0]["config"] == {"source": location}


def test_lxd_not_installed_and_no_snap_blocks(lxd, host):
    (host.bin / "lxd").unlink()  # no snapd, no LXD binary
    out = ctx().run(ctx().on.install(), make_state(leader=True))
    assert out.unit_status == testing.BlockedStatus(
        "LXD is not installed and snapd is not available to install it: install snapd, or an LXD package")
    assert lxd.mutations() == [] and host.calls == []


def test_daemon_not_answering_waits(lxd):
    lxd.ready = False
    out = ctx().run(ctx().on.update_status(), make_state(leader=True))
    assert out.unit_status.name == "waiting"


# -- cluster-wide config, MAAS ---------------------------------------------------------------
def test_maas_key_comes_from_a_user_secret_and_stays_out_of_databags_and_status(lxd):
    key = testing.Secret({"key": "consumer:token:maas-secret"}, owner=None)
    out = ctx().run(ctx().on.install(), make_state(
        leader=True, secrets=[key],
        config={"maas-api-url": "http://maas/MAAS", "maas-api-key": key.id, "maas-subnet-ipv4": "lab"}))
    boot = lxd.preseeds[0]
    assert boot["config"]["maas.api.key"] == "consumer:token:maas-secret"
    assert boot["profiles"][0]["devices"]["eth0"]["maas.subnet.ipv4"] == "lab"
    assert "maas-secret" not in databags(out) and "maas-secret" not in out.unit_status.message


def test_unreadable_maas_secret_blocks(lxd):
    out = ctx().run(ctx().on.install(), make_state(
        leader=True, config={"maas-api-url": "http://maas/MAAS", "maas-api-key": "secret:doesnotexist00000000"}))
    assert out.unit_status.name == "blocked" and "maas-api-key" in out.unit_status.message


# -- status ---------------------------------------------------------------------------------
def test_status_names_offline_and_stale_members(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2")
    lxd.member_rows[2] = Member("lxd-cluster-2", "u", ("database",), "Offline", "No heartbeat")
    out = ctx().run(ctx().on.update_status(), make_state(
        leader=True, app=published(cluster_pem), peers={1: announced(1)}))
    assert out.unit_status.message == (
        "member lxd-cluster-0 of 3 (database), fully operational; not online: lxd-cluster-2; "
        "stale member lxd-cluster-2 has no unit: run force-remove")


def test_evacuated_member_is_in_maintenance(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2")
    lxd.set_member_state("lxd-cluster-0", "evacuate")
    out = ctx().run(ctx().on.update_status(), make_state(
        leader=True, app=published(cluster_pem), peers={1: announced(1), 2: announced(2)}))
    assert out.unit_status.name == "maintenance"


# -- scale-in -------------------------------------------------------------------------------
def test_departing_unit_moves_its_instances_then_leaves(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-2", "lxd-cluster-0", "lxd-cluster-1")
    lxd.instance_rows = [Instance("a", "lxd-cluster-2", "Running"), Instance("b", "lxd-cluster-0", "Running")]
    state = make_state(ip="10.0.0.3", app=published(cluster_pem), peers={0: announced(0), 1: announced(1)})
    ctx(2).run(ctx(2).on.relation_departed(state.get_relation(REL), remote_unit=0, departing_unit=2), state)
    assert lxd.moves == [("a", "lxd-cluster-1")]  # the emptiest other member
    assert lxd.removed == [("lxd-cluster-2", False)]


# -- bootstrap, in full ------------------------------------------------------------------------------
def test_bootstrap_applies_exactly_the_bootstrap_preseed_for_this_unit(lxd, cluster_pem):
    out = ctx().run(ctx().on.config_changed(), make_state(leader=True, ip="10.0.0.7"))
    assert lxd.preseeds == [{
        "config": {"core.https_address": "10.0.0.7:8443", "images.auto_update_interval": "6"},
        "cluster": {"server_name": "lxd-cluster-0", "enabled": True},
        "storage_pools": [{"name": "local", "driver": "zfs", "description": "lxd-cluster pool",
                           "config": {"size": "20GiB"}}],
        "profiles": [{"name": "default", "description": "Default LXD profile (lxd-cluster)", "config": {},
                      "devices": {"root": {"path": "/", "pool": "local", "type": "disk"},
                                  "eth0": {"name": "eth0", "nictype": "bridged", "parent": "br0",
                                           "type": "nic"}}}],
    }]
    rel = out.get_relation(REL)
    assert rel.local_app_data["cluster-address"] == "10.0.0.7:8443"
    assert rel.local_unit_data["member"] == certificate_fingerprint(cluster_pem)
    assert rel.local_unit_data["server-name"] == "lxd-cluster-0"
    assert out.unit_status.message.startswith("member lxd-cluster-0 of 1 ")


def test_bootstrap_on_an_ipv6_binding_uses_a_bracketed_address_and_the_configured_port(lxd):
    out = ctx().run(ctx().on.install(), make_state(leader=True, ip="fd00::7", config={"cluster-port": 9443}))
    assert lxd.preseeds[0]["config"]["core.https_address"] == "[fd00::7]:9443"
    assert out.get_relation(REL).local_app_data["cluster-address"] == "[fd00::7]:9443"


def test_a_failed_bootstrap_blocks_with_lxd_words_and_publishes_nothing(lxd):
    lxd.fail_next_preseed = "Failed to create storage pool \"local\": zpool create failed"
    out = ctx().run(ctx().on.install(), make_state(leader=True))
    assert out.unit_status == testing.BlockedStatus(
        "bootstrap failed: Failed to create storage pool \"local\": zpool create failed")
    assert "certificate" not in out.get_relation(REL).local_app_data


def test_a_non_leader_on_a_fresh_model_waits_for_the_leader_and_announces_itself(lxd):
    out = ctx(1).run(ctx(1).on.install(), make_state(ip="10.0.0.2"))
    assert out.unit_status == testing.WaitingStatus("waiting for the leader to bootstrap the cluster")
    assert out.get_relation(REL).local_unit_data == {
        "server-name": "lxd-cluster-1", "address": "10.0.0.2:8443", "lxd-version": "5.21.2", "lxd-source": "deb"}
    assert lxd.mutations() == []
    assert out.workload_version == "5.21.2"


# -- credentials ------------------------------------------------------------------------------------
def test_the_offer_names_the_secret_that_holds_the_token(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    out = ctx().run(ctx().on.update_status(),
                    make_state(leader=True, app=published(cluster_pem), peers={1: announced(1)}))
    app = out.get_relation(REL).local_app_data
    secret = next(s for s in out.secrets if s.label == "join-lxd-cluster-1")
    assert app["join-secret"] == secret.id and app["join-unit"] == "lxd-cluster/1" and app["join-id"]
    assert secret.owner == "app"
    assert secret.latest_content == {"kind": "token", "value": lxd.tokens["lxd-cluster-1"]}
    assert lxd.tokens["lxd-cluster-1"] not in databags(out)
    assert out.unit_status.name == "active"


def test_joiners_are_served_in_numeric_not_lexical_order(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    out = ctx().run(ctx().on.update_status(),
                    make_state(leader=True, app=published(cluster_pem),
                               peers={10: announced(10), 9: announced(9)}))
    assert out.get_relation(REL).local_app_data["join-unit"] == "lxd-cluster/9"
    assert list(lxd.tokens) == ["lxd-cluster-9"]


def test_a_peer_that_has_not_announced_itself_gets_nothing(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    out = ctx().run(ctx().on.update_status(),
                    make_state(leader=True, app=published(cluster_pem), peers={1: {}}))
    assert "join-unit" not in out.get_relation(REL).local_app_data
    assert lxd.tokens == {} and not [s for s in out.secrets if s.label]


def test_joins_are_serialised_across_hooks(lxd, cluster_pem):
    """Two waiting peers: 1 gets a credential; 2 only after 1 is a member, and 1's secret goes."""
    lxd.be_member("lxd-cluster-0")
    fp = certificate_fingerprint(cluster_pem)
    first = ctx().run(ctx().on.update_status(), make_state(
        leader=True, app=published(cluster_pem), peers={1: announced(1), 2: announced(2)}))
    offer1 = dict(first.get_relation(REL).local_app_data)
    assert offer1["join-unit"] == "lxd-cluster/1" and list(lxd.tokens) == ["lxd-cluster-1"]

    # nothing changed: the outstanding credential stays, no second one
    again = ctx().run(ctx().on.update_status(), make_state(
        leader=True, app=offer1, peers={1: announced(1), 2: announced(2)}, secrets=first.secrets))
    assert dict(again.get_relation(REL).local_app_data) == offer1
    assert list(lxd.tokens) == ["lxd-cluster-1"] and lxd.calls.count("issue_join_token") == 1

    # unit 1 joined
    lxd.member_rows.append(Member("lxd-cluster-1", "https://10.0.0.2:8443", ("database",),
                                  "Online", "Fully operational"))
    state = make_state(leader=True, app=offer1, peers={1: announced(1, member=fp), 2: announced(2)},
                       secrets=again.secrets)
    second = ctx().run(ctx().on.relation_changed(state.get_relation(REL), remote_unit=1), state)
    offer2 = second.get_relation(REL).local_app_data
    assert offer2["join-unit"] == "lxd-cluster/2" and offer2["join-id"] != offer1["join-id"]
    labels = [s.label for s in second.secrets]
    assert "join-lxd-cluster-2" in labels and "join-lxd-cluster-1" not in labels

    # unit 2 joined: no offer left, no secret left
    lxd.member_rows.append(Member("lxd-cluster-2", "https://10.0.0.3:8443", ("database",),
                                  "Online", "Fully operational"))
    third = ctx().run(ctx().on.update_status(), make_state(
        leader=True, app=dict(offer2), peers={1: announced(1, member=fp), 2: announced(2, member=fp)},
        secrets=second.secrets))
    assert "join-unit" not in third.get_relation(REL).local_app_data
    assert not [s for s in third.secrets if s.label and s.label.startswith("join-")]
    assert third.unit_status == testing.ActiveStatus(
        "member lxd-cluster-0 of 3 (database), fully operational")


def test_the_trust_password_is_cleared_once_its_joiner_is_a_member(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1")
    lxd.extensions.discard("clustering_join_token")
    lxd.config["core.trust_password"] = "was-set"
    first = testing.Secret({"kind": "password", "value": "was-set"}, owner="app", label="join-lxd-cluster-1")
    app = published(cluster_pem, **{"join-unit": "lxd-cluster/1", "join-secret": first.id, "join-id": "p1"})
    out = ctx().run(ctx().on.update_status(), make_state(
        leader=True, app=app, peers={1: announced(1, member=certificate_fingerprint(cluster_pem))},
        secrets=[first]))
    assert lxd.config["core.trust_password"] == ""
    assert "join-unit" not in out.get_relation(REL).local_app_data


def test_a_failed_join_gets_a_new_token_in_a_new_revision_of_the_same_secret(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    old = lxd.issue_join_token("lxd-cluster-1")
    first = testing.Secret({"kind": "token", "value": old}, owner="app", label="join-lxd-cluster-1")
    app = published(cluster_pem, **{"join-unit": "lxd-cluster/1", "join-secret": first.id, "join-id": "abc"})
    peers = {1: announced(1, **{"join-failed": "abc", "join-error": "token expired"})}
    out = ctx().run(ctx().on.update_status(), make_state(leader=True, app=app, peers=peers, secrets=[first]))
    data = out.get_relation(REL).local_app_data
    assert data["join-secret"] == first.id and data["join-id"] not in ("", "abc")
    secret = next(s for s in out.secrets if s.id == first.id)
    assert secret.latest_content["value"] == lxd.tokens["lxd-cluster-1"] != old


def test_a_removed_peer_is_never_offered_a_credential(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    out = ctx().run(ctx().on.update_status(), make_state(
        leader=True, app=published(cluster_pem, removed="lxd-cluster-1"), peers={1: announced(1)}))
    assert "join-unit" not in out.get_relation(REL).local_app_data and lxd.tokens == {}


# -- join ------------------------------------------------------------------------------------------
def offered(pem: str, token: str, **kw) -> testing.State:
    secret = testing.Secret({"kind": "token", "value": token}, owner=None)
    app = published(pem, **{"join-unit": "lxd-cluster/1", "join-secret": secret.id, "join-id": "j1"})
    app.update(kw.pop("app_extra", {}))
    return make_state(ip="10.0.0.2", app=app, secrets=[secret], **kw)


def test_joiner_refuses_a_certificate_from_another_cluster(lxd, cluster_pem, other_pem):
    state = offered(cluster_pem, make_token("lxd-cluster-1", cluster_pem),
                    app_extra={"certificate": other_pem})  # fingerprint still that of cluster_pem
    out = ctx(1).run(ctx(1).on.config_changed(), state)
    assert out.unit_status == testing.BlockedStatus(
        "the published cluster certificate does not match its fingerprint: not joining")
    assert lxd.preseeds == [] and "member" not in out.get_relation(REL).local_unit_data


def test_joiner_refuses_a_token_for_another_cluster(lxd, cluster_pem, other_pem):
    out = ctx(1).run(ctx(1).on.config_changed(), offered(cluster_pem, make_token("lxd-cluster-1", other_pem)))
    assert out.unit_status.name == "blocked" and "fingerprint" in out.unit_status.message
    assert lxd.preseeds == []


def test_joiner_with_a_trust_password_puts_it_in_cluster_password(lxd, cluster_pem):
    secret = testing.Secret({"kind": "password", "value": "pw-123"}, owner=None)
    app = published(cluster_pem, **{"join-unit": "lxd-cluster/1", "join-secret": secret.id, "join-id": "j1"})
    out = ctx(1).run(ctx(1).on.config_changed(), make_state(ip="10.0.0.2", app=app, secrets=[secret]))
    cluster = lxd.preseeds[0]["cluster"]
    assert cluster["cluster_password"] == "pw-123" and "cluster_token" not in cluster
    assert cluster["member_config"] == [
        {"entity": "storage-pool", "name": "local", "key": "size", "value": "20GiB"}]
    assert "pw-123" not in databags(out)


def test_a_credential_for_another_unit_is_not_used(lxd, cluster_pem):
    state = offered(cluster_pem, make_token("lxd-cluster-1", cluster_pem))
    state = dataclasses.replace(state, networks=make_state(ip="10.0.0.3").networks)
    out = ctx(2).run(ctx(2).on.config_changed(), state)
    assert lxd.preseeds == [] and out.unit_status.name == "waiting"


def test_a_joiner_does_not_retry_a_credential_that_already_failed(lxd, cluster_pem):
    state = offered(cluster_pem, make_token("lxd-cluster-1", cluster_pem),
                    unit={"join-failed": "j1", "join-error": "token expired"})
    out = ctx(1).run(ctx(1).on.update_status(), state)
    assert lxd.preseeds == []
    assert out.unit_status == testing.WaitingStatus(
        "join failed, waiting for a new credential: token expired")


def test_a_joiner_without_access_to_the_secret_waits(lxd, cluster_pem):
    app = published(cluster_pem, **{"join-unit": "lxd-cluster/1", "join-secret": "secret:" + "a" * 20,
                                    "join-id": "j1"})
    out = ctx(1).run(ctx(1).on.config_changed(), make_state(ip="10.0.0.2", app=app))
    assert out.unit_status == testing.WaitingStatus("waiting for access to the join credential")
    assert lxd.preseeds == []


def test_a_successful_join_clears_an_earlier_failure(lxd, cluster_pem):
    state = offered(cluster_pem, make_token("lxd-cluster-1", cluster_pem), app_extra={"join-id": "j2"},
                    unit={"join-failed": "j1", "join-error": "token expired"})
    out = ctx(1).run(ctx(1).on.config_changed(), state)
    unit = out.get_relation(REL).local_unit_data
    assert unit["member"] == certificate_fingerprint(cluster_pem)
    assert "join-failed" not in unit and "join-error" not in unit


# -- never twice -------------------------------------------------------------------------------------
def test_a_member_of_another_cluster_is_blocked_and_changes_nothing(lxd, cluster_pem, other_pem):
    lxd.be_member("lxd-cluster-1")
    lxd.certificate = other_pem
    out = ctx(1).run(ctx(1).on.config_changed(), make_state(ip="10.0.0.2", app=published(cluster_pem)))
    assert out.unit_status.name == "blocked" and "member of another cluster" in out.unit_status.message
    assert lxd.mutations() == []


def test_a_non_leader_member_does_not_touch_cluster_config(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-1", "lxd-cluster-0")
    out = ctx(1).run(ctx(1).on.config_changed(), make_state(
        ip="10.0.0.2", app=published(cluster_pem), config={"images-auto-update": False}))
    assert lxd.mutations() == []
    assert out.get_relation(REL).local_unit_data["member"] == certificate_fingerprint(cluster_pem)


def test_after_an_lxd_refresh_the_leader_republishes_its_version(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    lxd.version = "5.21.3"  # snap refresh of the whole cluster
    out = ctx().run(ctx().on.update_status(), make_state(leader=True, app=published(cluster_pem)))
    assert out.get_relation(REL).local_app_data["lxd-version"] == "5.21.3"
    assert out.unit_status.name == "active"


# -- bad input ---------------------------------------------------------------------------------------
def _juju_can_send(changes: dict) -> bool:
    """Juju type-checks config before the charm sees it; those values cannot reach the charm."""
    kinds = {"string": str, "int": int, "boolean": bool, "secret": str}
    return all(v is not None and isinstance(v, kinds[OPTIONS[k]["type"]])
               and (OPTIONS[k]["type"] != "secret" or v.startswith("secret:")) for k, v in changes.items())


def _as_juju_would(changes: dict) -> dict:
    return {k: ("secret:" + "c" * 20 if OPTIONS[k]["type"] == "secret" else v) for k, v in changes.items()}


JUJU_BAD_CONFIG = [(_as_juju_would(c), o) for c, o in BAD_CONFIG if _juju_can_send(c)]


@pytest.mark.parametrize("changes, option", JUJU_BAD_CONFIG, ids=[case_id(c) for c in JUJU_BAD_CONFIG])
@pytest.mark.parametrize("leader", [True, False])
def test_every_config_error_blocks_with_its_message_and_touches_nothing(lxd, changes, option, leader):
    lxd.is_installed = False  # not even the install may run
    with pytest.raises(ConfigError) as expected:
        load_config({**DEFAULTS, **changes})
    out = ctx().run(ctx().on.config_changed(), make_state(leader=leader, config=changes))
    assert out.unit_status == testing.BlockedStatus(str(expected.value))
    assert option in out.unit_status.message
    assert lxd.calls == []


def test_enough_bad_config_reaches_the_charm():
    assert len(JUJU_BAD_CONFIG) >= 15


@pytest.mark.parametrize("driver, package",
                         [("zfs", "zfsutils-linux"), ("btrfs", "btrfs-progs"), ("lvm", "lvm2")])
def test_a_driver_lxd_cannot_use_blocks_naming_the_package(lxd, driver, package):
    lxd.storage_drivers = {"dir"}
    out = ctx().run(ctx().on.install(), make_state(leader=True, config={"storage-driver": driver}))
    assert out.unit_status.name == "blocked"
    assert package in out.unit_status.message and "dir" in out.unit_status.message
    assert lxd.mutations() == []


def test_a_missing_bridge_is_named(lxd):
    out = ctx().run(ctx().on.install(), make_state(leader=True, config={"bridge": "br7"}))
    assert out.unit_status == testing.BlockedStatus("bridge br7 does not exist: create it or set bridge")
    assert lxd.mutations() == []


def test_maas_on_an_lxd_without_maas_support_blocks(lxd):
    lxd.extensions.discard("maas_network")
    key = testing.Secret({"key": "k"}, owner=None)
    out = ctx().run(ctx().on.install(), make_state(
        leader=True, secrets=[key], config={"maas-api-url": "http://maas/MAAS", "maas-api-key": key.id}))
    assert out.unit_status.name == "blocked" and "MAAS" in out.unit_status.message
    assert lxd.mutations() == []


def test_a_juju_storage_device_with_a_signature_is_refused_without_consent(lxd):
    storage = testing.Storage("local")
    context = ctx()
    location = str(storage.get_filesystem(context))
    lxd.devices[location] = DeviceState(location, exists=True, is_block=True, signatures=("zfs_member",))
    out = context.run(context.on.storage_attached(storage), make_state(leader=True, storages=[storage]))
    assert out.unit_status.name == "blocked" and "zfs_member" in out.unit_status.message
    assert lxd.wiped == [] and lxd.preseeds == []


def test_a_joiner_wipes_its_device_only_with_consent_and_before_joining(lxd, cluster_pem):
    lxd.devices["/dev/vdc"] = DeviceState("/dev/vdc", exists=True, is_block=True, signatures=("btrfs",))
    state = offered(cluster_pem, make_token("lxd-cluster-1", cluster_pem),
                    config={"storage-device": "/dev/vdc", "wipe-storage-device": True})
    ctx(1).run(ctx(1).on.config_changed(), state)
    assert lxd.wiped == ["/dev/vdc"]
    assert lxd.calls.index("wipe_device") < lxd.calls.index("apply_preseed")
    assert lxd.preseeds[0]["cluster"]["member_config"][0]["value"] == "/dev/vdc"


def test_an_empty_device_is_not_wiped_even_with_consent(lxd):
    lxd.devices["/dev/vdb"] = DeviceState("/dev/vdb", exists=True, is_block=True)
    ctx().run(ctx().on.install(), make_state(
        leader=True, config={"storage-device": "/dev/vdb", "wipe-storage-device": True}))
    assert lxd.wiped == [] and len(lxd.preseeds) == 1


# -- cluster-wide config ------------------------------------------------------------------------------
@pytest.mark.parametrize("flag, before, after", [(False, "6", "0"), (True, "0", "6")])
def test_the_leader_applies_images_auto_update_to_an_existing_cluster(lxd, cluster_pem, flag, before, after):
    lxd.be_member("lxd-cluster-0")
    lxd.config["images.auto_update_interval"] = before
    ctx().run(ctx().on.config_changed(), make_state(
        leader=True, app=published(cluster_pem), config={"images-auto-update": flag}))
    assert lxd.config["images.auto_update_interval"] == after
    assert lxd.preseeds == []


def test_an_unchanged_cluster_config_is_not_written(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    ctx().run(ctx().on.config_changed(), make_state(leader=True, app=published(cluster_pem)))
    assert "update_config" not in lxd.calls


def test_maas_key_reaches_an_existing_cluster_only_through_lxd(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    key = testing.Secret({"key": "consumer:token:maas-secret"}, owner=None)
    out = ctx().run(ctx().on.config_changed(), make_state(
        leader=True, app=published(cluster_pem), secrets=[key],
        config={"maas-api-url": "http://maas/MAAS", "maas-api-key": key.id}))
    assert lxd.config["maas.api.key"] == "consumer:token:maas-secret"
    assert lxd.config["maas.api.url"] == "http://maas/MAAS"
    assert "maas-secret" not in databags(out) and "maas-secret" not in out.unit_status.message


def test_a_maas_secret_without_the_key_field_blocks(lxd):
    key = testing.Secret({"apikey": "x"}, owner=None)
    out = ctx().run(ctx().on.install(), make_state(
        leader=True, secrets=[key], config={"maas-api-url": "http://maas/MAAS", "maas-api-key": key.id}))
    assert out.unit_status.name == "blocked" and "maas-api-key" in out.unit_status.message
    assert lxd.preseeds == []


# -- status ----------------------------------------------------------------------------------------
def test_three_healthy_members(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2")
    out = ctx().run(ctx().on.update_status(), make_state(
        leader=True, app=published(cluster_pem), peers={1: announced(1), 2: announced(2)}))
    assert out.unit_status == testing.ActiveStatus("member lxd-cluster-0 of 3 (database), fully operational")


def test_two_members_of_two_planned_warn_about_redundancy(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1")
    out = ctx().run(ctx().on.update_status(), make_state(
        leader=True, app=published(cluster_pem), peers={1: announced(1)}, planned_units=2))
    assert out.unit_status == testing.ActiveStatus(
        "member lxd-cluster-0 of 2 (database), fully operational; "
        "fewer than 3 members: no database redundancy")


def test_two_members_while_a_third_is_planned_do_not_warn(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1")
    out = ctx().run(ctx().on.update_status(), make_state(
        leader=True, app=published(cluster_pem), peers={1: announced(1), 2: announced(2)}, planned_units=3))
    assert "fewer than 3" not in out.unit_status.message


def test_an_offline_member_is_named(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2")
    lxd.member_rows[1] = Member("lxd-cluster-1", "u", ("database",), "Offline", "No heartbeat since 30s")
    out = ctx().run(ctx().on.update_status(), make_state(
        leader=True, app=published(cluster_pem), peers={1: announced(1), 2: announced(2)}))
    assert out.unit_status == testing.ActiveStatus(
        "member lxd-cluster-0 of 3 (database), fully operational; not online: lxd-cluster-1")


def test_a_standby_member_says_so(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-3", "lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2")
    lxd.member_rows[0] = Member("lxd-cluster-3", "u", ("database-standby",), "Online", "Fully operational")
    out = ctx(3).run(ctx(3).on.update_status(), make_state(
        ip="10.0.0.4", app=published(cluster_pem), peers={i: announced(i) for i in range(3)}))
    assert out.unit_status == testing.ActiveStatus(
        "member lxd-cluster-3 of 4 (database-standby), fully operational")


def test_lxd_not_answering_is_waiting_and_says_why(lxd):
    lxd.ready = False
    out = ctx().run(ctx().on.update_status(), make_state(leader=True))
    assert out.unit_status == testing.WaitingStatus(
        "waiting for the LXD daemon: Daemon still not running after 30s timeout")
    assert lxd.mutations() == []


def test_workload_version_is_lxds_version(lxd, cluster_pem):
    lxd.version = "5.0.3"
    out = ctx(1).run(ctx(1).on.update_status(), make_state(ip="10.0.0.2"))
    assert out.workload_version == "5.0.3"


# -- defects found by these tests, fixed ----------------------------------------------------------------
def test_changing_cluster_port_on_a_formed_cluster_does_not_move_the_published_address(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    lxd.member_rows[0] = Member("lxd-cluster-0", "https://10.0.0.1:8443", ("database",), "Online",
                                "Fully operational")
    lxd.config["core.https_address"] = "10.0.0.1:8443"
    out = ctx().run(ctx().on.config_changed(), make_state(
        leader=True, app=published(cluster_pem), config={"cluster-port": 9443}))
    assert out.get_relation(REL).local_app_data["cluster-address"] == "10.0.0.1:8443"


@pytest.mark.parametrize("juju_storage", [False, True])
def test_a_dir_pool_is_never_given_a_block_device(lxd, juju_storage):
    storage = testing.Storage("local")
    context = ctx()
    device = str(storage.get_filesystem(context)) if juju_storage else "/dev/vdb"
    lxd.devices[device] = DeviceState(device, exists=True, is_block=True, signatures=("ext4",))
    context.run(context.on.install(), make_state(
        leader=True, storages=[storage] if juju_storage else [],
        config={"storage-driver": "dir", "wipe-storage-device": True,
                **({} if juju_storage else {"storage-device": device})}))
    assert all("source" not in p["storage_pools"][0]["config"] for p in lxd.preseeds)
    assert lxd.wiped == []


def test_a_member_whose_address_differs_from_cluster_port_says_it_cannot_move(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    lxd.member_rows[0] = Member("lxd-cluster-0", "https://10.0.0.1:8443", ("database",), "Online",
                                "Fully operational")
    out = ctx().run(ctx().on.config_changed(), make_state(
        leader=True, app=published(cluster_pem), config={"cluster-port": 9443}))
    assert out.unit_status == testing.BlockedStatus(
        "cluster-port is fixed once a member has joined (this member listens on 8443): set cluster-port back to 8443")
