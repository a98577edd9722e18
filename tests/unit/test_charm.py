"""State-transition tests of the charm: one event, a fake LXD, assertions on the output state."""

from __future__ import annotations

import json

import pytest
from ops import testing

import charm
from fake_lxd import FakeLXD
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
    token = lxd.issue_join_token("lxd-cluster-2")
    secret = testing.Secret({"kind": "token", "value": token}, owner=None)
    fp = certificate_fingerprint(cluster_pem)
    issuer = announced(1, member=fp, **{"join-unit": "lxd-cluster/2", "join-secret": secret.id, "join-id": "u1"})
    state = make_state(leader=True, ip="10.0.0.3", app=published(cluster_pem, issuer="lxd-cluster/1"),
                       peers={0: announced(0), 1: issuer}, secrets=[secret])  # 1 is the only member
    ctx(2).run(ctx(2).on.relation_changed(state.get_relation(REL), remote_unit=1), state)
    assert lxd.preseeds[0]["cluster"]["cluster_token"] == token


# -- join -----------------------------------------------------------------------------------
def joiner_state(lxd: FakeLXD, pem: str, **kw) -> testing.State:
    token = lxd.issue_join_token("lxd-cluster-1")
    lxd.calls.clear()
    secret = testing.Secret({"kind": "token", "value": token}, owner=None)
    app = published(pem, **{"join-unit": "lxd-cluster/1", "join-secret": secret.id, "join-id": "j1"})
    app.update(kw.pop("app_extra", {}))
    lxd.devices["/dev/vdc"] = DeviceState("/dev/vdc", exists=True, is_block=True)
    return make_state(ip="10.0.0.2", app=app, secrets=[secret], config={"storage-device": "/dev/vdc"}, **kw)


def test_joiner_applies_a_join_preseed_with_its_own_address_and_device(lxd, cluster_pem):
    state = joiner_state(lxd, cluster_pem)
    token = lxd.tokens["lxd-cluster-1"]
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


def test_lxd_not_installed_and_no_snap_blocks(lxd):
    lxd.is_installed, lxd.snap = False, False
    out = ctx().run(ctx().on.install(), make_state(leader=True))
    assert out.unit_status.name == "blocked" and "snap" in out.unit_status.message


def test_daemon_not_answering_waits(lxd):
    lxd.ready = False
    out = ctx().run(ctx().on.update_status(), make_state(leader=True))
    assert out.unit_status.name == "waiting"


# -- cluster-wide config, MAAS ---------------------------------------------------------------
@pytest.mark.parametrize("flag, interval", [(False, "0"), (True, "6")])
def test_images_auto_update_is_applied_by_the_leader(lxd, cluster_pem, flag, interval):
    lxd.be_member("lxd-cluster-0")
    ctx().run(ctx().on.config_changed(), make_state(
        leader=True, app=published(cluster_pem), config={"images-auto-update": flag}))
    assert lxd.config.get("images.auto_update_interval", "6") == interval  # 6 is LXD's default


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
