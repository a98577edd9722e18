"""Membership: bootstrap, join, the join credentials a member issues, and the issuer hand-over."""

from __future__ import annotations

import dataclasses

import pytest
from charms.lxd_cluster.v0.lxd_cluster import fingerprint_of as certificate_fingerprint
from fake_lxd import FakeLXD, make_token
from ops import testing
from states import REL, announced, ctx, databags, make_state, membership, offer, offers, published

from models import DeviceState, Member
from workload import LXDError


# -- bootstrap -------------------------------------------------------------------------------------
def test_bootstrap_applies_exactly_the_bootstrap_preseed_for_this_unit(lxd, cluster_pem):
    out = ctx().run(ctx().on.config_changed(), make_state(leader=True, ip="10.0.0.7"))
    assert lxd.preseeds == [
        {
            # no core.metrics_address: set before clustering, LXD 5.0 serves metrics with the server's
            # own certificate (metrics.serve_metrics)
            "config": {"core.https_address": "10.0.0.7:8443", "images.auto_update_interval": "6"},
            "cluster": {"server_name": "lxd-cluster-0", "enabled": True},
            "storage_pools": [
                {"name": "local", "driver": "zfs", "description": "lxd-cluster pool", "config": {"size": "20GiB"}}
            ],
            "profiles": [
                {
                    "name": "default",
                    "description": "Default LXD profile (lxd-cluster)",
                    "config": {},
                    "devices": {
                        "root": {"path": "/", "pool": "local", "type": "disk"},
                        "eth0": {"name": "eth0", "nictype": "bridged", "parent": "br0", "type": "nic"},
                    },
                }
            ],
        }
    ]
    rel = out.get_relation(REL)
    assert rel.local_app_data["cluster-address"] == "10.0.0.7:8443"
    assert membership(out) == "yes"  # told through its secret
    assert "member" not in rel.local_unit_data  # no databag write each peer would run a hook for
    assert rel.local_unit_data["server-name"] == "lxd-cluster-0"
    assert out.unit_status.message.startswith("member lxd-cluster-0 of 1 ")


def test_bootstrap_on_an_ipv6_binding_uses_a_bracketed_address_and_the_configured_port(lxd):
    out = ctx().run(ctx().on.install(), make_state(leader=True, ip="fd00::7", config={"cluster-port": 9443}))
    assert lxd.preseeds[0]["config"]["core.https_address"] == "[fd00::7]:9443"
    assert out.get_relation(REL).local_app_data["cluster-address"] == "[fd00::7]:9443"


def test_a_failed_bootstrap_blocks_with_lxd_words_and_publishes_nothing(lxd):
    lxd.fail_next_preseed = 'Failed to create storage pool "local": zpool create failed'
    out = ctx().run(ctx().on.install(), make_state(leader=True))
    assert out.unit_status == testing.BlockedStatus(
        'bootstrap failed: Failed to create storage pool "local": zpool create failed: '
        "fix the cause on this machine (LXD's log has more)"
    )
    assert "certificate" not in out.get_relation(REL).local_app_data


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


# -- join credentials ------------------------------------------------------------------------------
def test_leader_issues_one_token_in_an_app_secret_never_in_a_databag(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    peers = {1: announced(1), 2: announced(2)}
    state = make_state(leader=True, app=published(cluster_pem), peers=peers)
    out = ctx().run(ctx().on.relation_changed(state.get_relation(REL), remote_unit=1), state)
    app = out.get_relation(REL).local_app_data
    # tokens first: every waiting unit gets its own, in join order, each in its own secret
    assert [o["join-unit"] for o in offers(app)] == ["lxd-cluster/1", "lxd-cluster/2"]
    for uid in (1, 2):
        entry = offer(app, f"lxd-cluster/{uid}")
        secret = next(s for s in out.secrets if s.id == entry["join-secret"])
        assert secret.owner == "app" and secret.label == f"join-lxd-cluster-{uid}"
        content = secret.latest_content
        assert content["kind"] == "token" and content["value"] == lxd.tokens[f"lxd-cluster-{uid}"]
        assert lxd.tokens[f"lxd-cluster-{uid}"] not in databags(out)
    assert lxd.calls.count("issue_join_token") == 2


def test_the_offer_names_the_secret_that_holds_the_token(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    out = ctx().run(
        ctx().on.update_status(), make_state(leader=True, app=published(cluster_pem), peers={1: announced(1)})
    )
    app = out.get_relation(REL).local_app_data
    secret = next(s for s in out.secrets if s.label == "join-lxd-cluster-1")
    entry = offer(app)
    assert entry["join-secret"] == secret.id and entry["join-unit"] == "lxd-cluster/1" and entry["join-id"]
    assert secret.owner == "app"
    assert secret.latest_content == {"kind": "token", "value": lxd.tokens["lxd-cluster-1"]}
    assert lxd.tokens["lxd-cluster-1"] not in databags(out)
    assert out.unit_status.name == "active"


def test_a_member_on_an_lxd_without_join_tokens_issues_nothing_and_says_why(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    lxd.extensions.discard("clustering_join_token")
    out = ctx().run(
        ctx().on.update_status(), make_state(leader=True, app=published(cluster_pem), peers={1: announced(1)})
    )
    assert out.unit_status.name == "blocked" and "no join tokens (API extension clustering_join_token)" in (
        out.unit_status.message
    )
    assert not [s for s in out.secrets if s.label == "join-lxd-cluster-1"] and "core.trust_password" not in lxd.config


def test_next_joiner_gets_a_credential_once_the_first_is_a_member(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1")
    first = testing.Secret({"kind": "token", "value": "old"}, owner="app", label="join-lxd-cluster-1")
    app = published(cluster_pem, **{"join-unit": "lxd-cluster/1", "join-secret": first.id, "join-id": "abc"})
    fp = certificate_fingerprint(cluster_pem)
    peers = {1: announced(1, member=fp), 2: announced(2)}
    out = ctx().run(ctx().on.update_status(), make_state(leader=True, app=app, peers=peers, secrets=[first]))
    data = out.get_relation(REL).local_app_data
    assert [o["join-unit"] for o in offers(data)] == ["lxd-cluster/2"]  # a new batch drops the joined one
    assert all(s.label != "join-lxd-cluster-1" for s in out.secrets)  # the spent one is removed


def test_an_outstanding_credential_is_not_reissued(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    first = testing.Secret({"kind": "token", "value": "old"}, owner="app", label="join-lxd-cluster-1")
    app = published(cluster_pem, **{"join-unit": "lxd-cluster/1", "join-secret": first.id, "join-id": "abc"})
    ctx().run(
        ctx().on.update_status(),
        make_state(leader=True, app=app, peers={1: announced(1), 2: announced(2)}, secrets=[first]),
    )
    assert list(lxd.tokens) == ["lxd-cluster-2"]  # 2 gets its own; 1's is not re-issued


def test_a_reported_failed_join_gets_a_fresh_credential(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    first = testing.Secret({"kind": "token", "value": "old"}, owner="app", label="join-lxd-cluster-1")
    app = published(cluster_pem, **{"join-unit": "lxd-cluster/1", "join-secret": first.id, "join-id": "abc"})
    peers = {1: announced(1, **{"join-failed": "abc", "join-error": "token expired"})}
    out = ctx().run(ctx().on.update_status(), make_state(leader=True, app=app, peers=peers, secrets=[first]))
    data = offer(out.get_relation(REL).local_app_data)
    assert data["join-unit"] == "lxd-cluster/1" and data["join-id"] != "abc"
    assert (
        next(s for s in out.secrets if s.label == "join-lxd-cluster-1").latest_content["value"]
        == lxd.tokens["lxd-cluster-1"]
    )


def test_a_failed_join_gets_a_new_token_in_a_new_revision_of_the_same_secret(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    old = lxd.issue_join_token("lxd-cluster-1")
    first = testing.Secret({"kind": "token", "value": old}, owner="app", label="join-lxd-cluster-1")
    app = published(cluster_pem, **{"join-unit": "lxd-cluster/1", "join-secret": first.id, "join-id": "abc"})
    peers = {1: announced(1, **{"join-failed": "abc", "join-error": "token expired"})}
    out = ctx().run(ctx().on.update_status(), make_state(leader=True, app=app, peers=peers, secrets=[first]))
    data = offer(out.get_relation(REL).local_app_data)
    assert data["join-secret"] == first.id and data["join-id"] not in ("", "abc")
    secret = next(s for s in out.secrets if s.id == first.id)
    assert secret.latest_content["value"] == lxd.tokens["lxd-cluster-1"] != old


def test_joiners_are_served_in_numeric_not_lexical_order(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    out = ctx().run(
        ctx().on.update_status(),
        make_state(leader=True, app=published(cluster_pem), peers={10: announced(10), 9: announced(9)}),
    )
    queue = offers(out.get_relation(REL).local_app_data)
    assert [o["join-unit"] for o in queue] == ["lxd-cluster/9", "lxd-cluster/10"]  # 9 joins first


def test_a_peer_that_has_not_announced_itself_gets_nothing(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    out = ctx().run(ctx().on.update_status(), make_state(leader=True, app=published(cluster_pem), peers={1: {}}))
    assert "join-queue" not in out.get_relation(REL).local_app_data
    assert lxd.tokens == {} and not [s for s in out.secrets if s.label and s.label.startswith("join-")]


def test_tokens_first_then_the_issuer_stays_out_of_the_join_loop(lxd, cluster_pem):
    """Two waiting peers get their tokens in one hook; as they join the issuer writes nothing (each
    write would cost every peer a hook) and removes each used token's secret."""
    lxd.be_member("lxd-cluster-0")
    first = ctx().run(
        ctx().on.update_status(),
        make_state(leader=True, app=published(cluster_pem), peers={1: announced(1), 2: announced(2)}),
    )
    queued = dict(first.get_relation(REL).local_app_data)
    assert [o["join-unit"] for o in offers(queued)] == ["lxd-cluster/1", "lxd-cluster/2"]
    assert sorted(lxd.tokens) == ["lxd-cluster-1", "lxd-cluster-2"]

    # nothing changed: the outstanding credentials stay, none re-issued
    again = ctx().run(
        ctx().on.update_status(),
        make_state(leader=True, app=queued, peers={1: announced(1), 2: announced(2)}, secrets=first.secrets),
    )
    assert dict(again.get_relation(REL).local_app_data) == queued
    assert lxd.calls.count("issue_join_token") == 2

    # unit 1 joined: no databag write, its used token's secret goes, 2's stays
    lxd.member_rows.append(
        Member("lxd-cluster-1", "https://10.0.0.2:8443", ("database",), "Online", "Fully operational")
    )
    state = make_state(leader=True, app=queued, peers={1: announced(1), 2: announced(2)}, secrets=again.secrets)
    second = ctx().run(ctx().on.relation_changed(state.get_relation(REL), remote_unit=1), state)
    assert dict(second.get_relation(REL).local_app_data) == queued
    labels = [s.label for s in second.secrets]
    assert "join-lxd-cluster-2" in labels and "join-lxd-cluster-1" not in labels

    # unit 2 joined: no secret left
    lxd.member_rows.append(
        Member("lxd-cluster-2", "https://10.0.0.3:8443", ("database",), "Online", "Fully operational")
    )
    third = ctx().run(
        ctx().on.update_status(),
        make_state(leader=True, app=queued, peers={1: announced(1), 2: announced(2)}, secrets=second.secrets),
    )
    assert not [s for s in third.secrets if s.label and s.label.startswith("join-")]
    assert third.unit_status == testing.ActiveStatus("member lxd-cluster-0 of 3 (database), fully operational")


def test_a_removed_peer_is_never_offered_a_credential(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    out = ctx().run(
        ctx().on.update_status(),
        make_state(leader=True, app=published(cluster_pem, removed="lxd-cluster-1"), peers={1: announced(1)}),
    )
    assert "join-queue" not in out.get_relation(REL).local_app_data and lxd.tokens == {}


# -- the issuer hand-over --------------------------------------------------------------------------
def test_a_leader_that_is_not_a_member_appoints_a_member_to_issue_for_it(lxd, cluster_pem):
    fp = certificate_fingerprint(cluster_pem)
    state = make_state(
        leader=True,
        ip="10.0.0.3",
        app=published(cluster_pem, issuer="lxd-cluster/0"),
        peers={0: announced(0, member=fp), 1: announced(1, member=fp)},
    )
    out = ctx(2).run(ctx(2).on.leader_elected(), state)
    assert out.get_relation(REL).local_app_data["issuer"] == "lxd-cluster/0"  # lowest member
    assert lxd.preseeds == [] and lxd.tokens == {}
    assert out.unit_status.name == "waiting"


def test_a_new_leader_that_is_not_a_member_removes_the_app_join_secrets_when_it_appoints_a_member(lxd, cluster_pem):
    """Between two joins leadership moves to unit 2, which is no member: the credential the old leader
    issued for unit 3 (app-owned, label join-lxd-cluster-3) goes with the void offer. Otherwise the member
    issuer finds it by label (Juju: every unit finds an app secret by label), cannot set it (not the
    leader), and its own unit secret with that label fails its hook at commit, on every retry."""
    fp = certificate_fingerprint(cluster_pem)
    credential = testing.Secret({"kind": "token", "value": "t"}, owner="app", label="join-lxd-cluster-3")
    state = make_state(
        leader=True,
        ip="10.0.0.3",
        app=published(
            cluster_pem,
            issuer="lxd-cluster/0",
            **{"join-unit": "lxd-cluster/3", "join-secret": credential.id, "join-id": "j3"},
        ),
        peers={0: announced(0, member=fp), 1: announced(1, member=fp), 3: announced(3)},
        secrets=[credential],
    )
    out = ctx(2).run(ctx(2).on.leader_elected(), state)
    app = out.get_relation(REL).local_app_data
    assert app["issuer"] == "lxd-cluster/0" and offers(app) == []
    assert not [s for s in out.secrets if s.label == "join-lxd-cluster-3"]


def test_an_appointed_member_issues_from_its_own_databag_with_a_granted_unit_secret(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-1", "lxd-cluster-0")
    fp = certificate_fingerprint(cluster_pem)
    state = make_state(
        ip="10.0.0.2",
        app=published(cluster_pem, issuer="lxd-cluster/1"),
        unit=announced(1, member=fp),
        peers={0: announced(0, member=fp), 2: announced(2)},
    )
    out = ctx(1).run(ctx(1).on.update_status(), state)
    assert offer(out.get_relation(REL).local_unit_data)["join-unit"] == "lxd-cluster/2"
    secret = next(s for s in out.secrets if s.label == "join-lxd-cluster-2")
    assert secret.owner == "unit" and secret.remote_grants == {REL: {"lxd-cluster/2"}}  # granted to it alone
    assert secret.latest_content["value"] == lxd.tokens["lxd-cluster-2"]
    assert lxd.tokens["lxd-cluster-2"] not in databags(out)


def test_a_joiner_takes_the_credential_the_issuing_member_offers(lxd, cluster_pem):
    token = make_token("lxd-cluster-2", cluster_pem)
    secret = testing.Secret({"kind": "token", "value": token}, owner=None)
    fp = certificate_fingerprint(cluster_pem)
    issuer = announced(1, member=fp, **{"join-unit": "lxd-cluster/2", "join-secret": secret.id, "join-id": "u1"})
    state = make_state(
        leader=True,
        ip="10.0.0.3",
        app=published(cluster_pem, issuer="lxd-cluster/1"),
        peers={0: announced(0), 1: issuer},
        secrets=[secret],
    )  # 1 is the only member
    ctx(2).run(ctx(2).on.relation_changed(state.get_relation(REL), remote_unit=1), state)
    assert lxd.preseeds[0]["cluster"]["cluster_token"] == token


# -- join ------------------------------------------------------------------------------------------
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
    assert lxd.preseeds == [
        {
            "cluster": {
                "enabled": True,
                "server_name": "lxd-cluster-1",
                "server_address": "10.0.0.2:8443",
                "cluster_address": "10.0.0.1:8443",
                "cluster_certificate": cluster_pem,
                "cluster_token": token,
                "member_config": [{"entity": "storage-pool", "name": "local", "key": "source", "value": "/dev/vdc"}],
            }
        }
    ]
    assert membership(out) == "yes"
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


def offered(pem: str, token: str, **kw) -> testing.State:
    secret = testing.Secret({"kind": "token", "value": token}, owner=None)
    extra = dict(kw.pop("app_extra", {}))
    join_id = extra.pop("join-id", "j1")
    app = published(pem, **{"join-unit": "lxd-cluster/1", "join-secret": secret.id, "join-id": join_id}, **extra)
    return make_state(ip="10.0.0.2", app=app, secrets=[secret], **kw)


def test_joiner_refuses_a_certificate_from_another_cluster(lxd, cluster_pem, other_pem):
    state = offered(
        cluster_pem, make_token("lxd-cluster-1", cluster_pem), app_extra={"certificate": other_pem}
    )  # fingerprint still that of cluster_pem
    out = ctx(1).run(ctx(1).on.config_changed(), state)
    assert out.unit_status == testing.BlockedStatus(
        "the published cluster certificate does not match its fingerprint: not joining"
    )
    assert lxd.preseeds == [] and membership(out) == "no"


def test_joiner_refuses_a_token_for_another_certificate_and_waits_for_a_new_one(lxd, cluster_pem, other_pem):
    """Another cluster's, or one issued before the cluster certificate changed (the issuer re-issues it)."""
    out = ctx(1).run(ctx(1).on.config_changed(), offered(cluster_pem, make_token("lxd-cluster-1", other_pem)))
    assert out.unit_status == testing.WaitingStatus(
        "the join credential names an older cluster certificate: waiting for a new one"
    )
    assert lxd.preseeds == []


def test_a_credential_for_another_unit_is_not_used(lxd, cluster_pem):
    state = offered(cluster_pem, make_token("lxd-cluster-1", cluster_pem))
    state = dataclasses.replace(state, networks=make_state(ip="10.0.0.3").networks)
    out = ctx(2).run(ctx(2).on.config_changed(), state)
    assert lxd.preseeds == [] and out.unit_status.name == "waiting"


def test_a_joiner_does_not_retry_a_credential_that_already_failed(lxd, cluster_pem):
    state = offered(
        cluster_pem, make_token("lxd-cluster-1", cluster_pem), unit={"join-failed": "j1", "join-error": "token expired"}
    )
    out = ctx(1).run(ctx(1).on.update_status(), state)
    assert lxd.preseeds == []
    assert out.unit_status == testing.WaitingStatus("join failed, waiting for a new credential: token expired")


def test_a_joiner_without_access_to_the_secret_waits(lxd, cluster_pem):
    app = published(cluster_pem, **{"join-unit": "lxd-cluster/1", "join-secret": "secret:" + "a" * 20, "join-id": "j1"})
    out = ctx(1).run(ctx(1).on.config_changed(), make_state(ip="10.0.0.2", app=app))
    assert out.unit_status == testing.WaitingStatus("waiting for access to the join credential")
    assert lxd.preseeds == []


def test_a_successful_join_clears_an_earlier_failure(lxd, cluster_pem):
    state = offered(
        cluster_pem,
        make_token("lxd-cluster-1", cluster_pem),
        app_extra={"join-id": "j2"},
        unit={"join-failed": "j1", "join-error": "token expired"},
    )
    out = ctx(1).run(ctx(1).on.config_changed(), state)
    unit = out.get_relation(REL).local_unit_data
    assert membership(out) == "yes"
    assert "join-failed" not in unit and "join-error" not in unit


def test_a_joiner_wipes_its_device_only_with_consent_and_before_joining(lxd, cluster_pem):
    lxd.devices["/dev/vdc"] = DeviceState("/dev/vdc", exists=True, is_block=True, signatures=("btrfs",))
    state = offered(
        cluster_pem,
        make_token("lxd-cluster-1", cluster_pem),
        config={"storage-device": "/dev/vdc", "wipe-storage-device": True},
    )
    ctx(1).run(ctx(1).on.config_changed(), state)
    assert lxd.wiped == ["/dev/vdc"]
    assert lxd.calls.index("wipe_device") < lxd.calls.index("apply_preseed")
    assert lxd.preseeds[0]["cluster"]["member_config"][0]["value"] == "/dev/vdc"


# -- once a member ---------------------------------------------------------------------------------
def test_a_member_of_another_cluster_is_blocked_and_changes_nothing(lxd, cluster_pem, other_pem):
    lxd.be_member("lxd-cluster-1")
    lxd.certificate = other_pem
    out = ctx(1).run(ctx(1).on.config_changed(), make_state(ip="10.0.0.2", app=published(cluster_pem)))
    assert out.unit_status.name == "blocked" and "member of another cluster" in out.unit_status.message
    assert lxd.mutations() == []


def test_a_non_leader_member_does_not_touch_cluster_config(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-1", "lxd-cluster-0")
    out = ctx(1).run(
        ctx(1).on.config_changed(),
        make_state(ip="10.0.0.2", app=published(cluster_pem), config={"images-auto-update": False}),
    )
    assert lxd.mutations() == []
    assert membership(out) == "yes"


def test_changing_cluster_port_on_a_formed_cluster_does_not_move_the_published_address(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    lxd.member_rows[0] = Member("lxd-cluster-0", "https://10.0.0.1:8443", ("database",), "Online", "Fully operational")
    lxd.config["core.https_address"] = "10.0.0.1:8443"
    out = ctx().run(
        ctx().on.config_changed(), make_state(leader=True, app=published(cluster_pem), config={"cluster-port": 9443})
    )
    assert out.get_relation(REL).local_app_data["cluster-address"] == "10.0.0.1:8443"


def test_a_member_whose_address_differs_from_cluster_port_says_it_cannot_move(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    lxd.member_rows[0] = Member("lxd-cluster-0", "https://10.0.0.1:8443", ("database",), "Online", "Fully operational")
    out = ctx().run(
        ctx().on.config_changed(), make_state(leader=True, app=published(cluster_pem), config={"cluster-port": 9443})
    )
    assert out.unit_status == testing.BlockedStatus(
        "cluster-port is fixed once a member has joined (this member listens on 8443): set cluster-port back to 8443"
    )


# -- cluster-wide config, MAAS ---------------------------------------------------------------------
@pytest.mark.parametrize("flag, before, after", [(False, "6", "0"), (True, "0", "6")])
def test_the_leader_applies_images_auto_update_to_an_existing_cluster(lxd, cluster_pem, flag, before, after):
    lxd.be_member("lxd-cluster-0")
    lxd.config["images.auto_update_interval"] = before
    ctx().run(
        ctx().on.config_changed(),
        make_state(leader=True, app=published(cluster_pem), config={"images-auto-update": flag}),
    )
    assert lxd.config["images.auto_update_interval"] == after
    assert lxd.preseeds == []


def test_an_unchanged_cluster_config_is_not_written(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    lxd.config.update({"cluster.join_token_expiry": "1H", "core.remote_token_expiry": "1H"})  # set before
    ctx().run(ctx().on.config_changed(), make_state(leader=True, app=published(cluster_pem)))
    assert "update_config" not in lxd.calls


def test_maas_key_comes_from_a_user_secret_and_stays_out_of_databags_and_status(lxd):
    key = testing.Secret({"key": "consumer:token:maas-secret"}, owner=None)
    out = ctx().run(
        ctx().on.install(),
        make_state(
            leader=True,
            secrets=[key],
            config={"maas-api-url": "http://maas/MAAS", "maas-api-key": key.id, "maas-subnet-ipv4": "lab"},
        ),
    )
    boot = lxd.preseeds[0]
    assert boot["config"]["maas.api.key"] == "consumer:token:maas-secret"
    assert boot["profiles"][0]["devices"]["eth0"]["maas.subnet.ipv4"] == "lab"
    assert "maas-secret" not in databags(out) and "maas-secret" not in out.unit_status.message


def test_maas_key_reaches_an_existing_cluster_only_through_lxd(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    key = testing.Secret({"key": "consumer:token:maas-secret"}, owner=None)
    out = ctx().run(
        ctx().on.config_changed(),
        make_state(
            leader=True,
            app=published(cluster_pem),
            secrets=[key],
            config={"maas-api-url": "http://maas/MAAS", "maas-api-key": key.id},
        ),
    )
    assert lxd.config["maas.api.key"] == "consumer:token:maas-secret"
    assert lxd.config["maas.api.url"] == "http://maas/MAAS"
    assert "maas-secret" not in databags(out) and "maas-secret" not in out.unit_status.message


def test_unreadable_maas_secret_blocks(lxd):
    out = ctx().run(
        ctx().on.install(),
        make_state(
            leader=True, config={"maas-api-url": "http://maas/MAAS", "maas-api-key": "secret:doesnotexist00000000"}
        ),
    )
    assert out.unit_status.name == "blocked" and "maas-api-key" in out.unit_status.message


def test_a_maas_secret_without_the_key_field_blocks(lxd):
    key = testing.Secret({"apikey": "x"}, owner=None)
    out = ctx().run(
        ctx().on.install(),
        make_state(leader=True, secrets=[key], config={"maas-api-url": "http://maas/MAAS", "maas-api-key": key.id}),
    )
    assert out.unit_status.name == "blocked" and "maas-api-key" in out.unit_status.message
    assert lxd.preseeds == []


# -- failed joins: permanent ones block, transient ones back off ----------------------------------------
def _fail_join(lxd, cluster_pem, error, unit=None, join_id="j1", config=None):
    state = offered(
        cluster_pem,
        make_token("lxd-cluster-1", cluster_pem),
        app_extra={"join-id": join_id},
        unit=unit or {},
        config=config or {},
    )
    lxd.fail_next_preseed = error
    out = ctx(1).run(ctx(1).on.config_changed(), state)
    return out, dict(out.get_relation(REL).local_unit_data)


def test_the_same_join_error_twice_blocks_with_lxd_words_and_the_fix(lxd, cluster_pem):
    out, unit = _fail_join(lxd, cluster_pem, "Failed to join cluster: weird storage error 17")
    assert out.unit_status.name == "waiting" and "join-blocked" not in unit
    out, unit = _fail_join(lxd, cluster_pem, "Failed to join cluster: weird storage error 18", unit=unit, join_id="j2")
    assert out.unit_status.name == "blocked"
    assert "Failed to join cluster: weird storage error 18" in out.unit_status.message
    assert "fix the cause on this machine" in out.unit_status.message
    assert unit["join-blocked"] and unit["join-failed"] == "j2"


def test_a_port_in_use_blocks_at_the_first_failure_naming_cluster_port(lxd, cluster_pem):
    error = (
        "Failed to update server configuration: cannot listen on https socket: "
        "listen tcp 10.0.0.2:22: bind: address already in use"
    )
    out, unit = _fail_join(lxd, cluster_pem, error, config={"cluster-port": 22})
    assert out.unit_status.name == "blocked"
    assert "cluster-port 22 is taken on this machine" in out.unit_status.message and "bind" in out.unit_status.message


def test_an_issuer_gives_a_blocked_joiner_no_new_credential_and_serves_the_next(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    first = testing.Secret({"kind": "token", "value": "old"}, owner="app", label="join-lxd-cluster-1")
    app = published(cluster_pem, **{"join-unit": "lxd-cluster/1", "join-secret": first.id, "join-id": "abc"})
    blocked = announced(1, **{"join-failed": "abc", "join-error": "boom", "join-blocked": "1:x"})
    peers = {1: blocked, 2: announced(2)}
    out = ctx().run(ctx().on.update_status(), make_state(leader=True, app=app, peers=peers, secrets=[first]))
    assert [o["join-unit"] for o in offers(out.get_relation(REL).local_app_data)] == ["lxd-cluster/2"]
    assert list(lxd.tokens) == ["lxd-cluster-2"]
    assert all(s.label != "join-lxd-cluster-1" for s in out.secrets)  # the blocked unit's credential is gone


def test_a_blocked_joiner_stays_blocked_until_its_config_changes(lxd, cluster_pem):
    _, unit = _fail_join(lxd, cluster_pem, "Failed to join cluster: weird")
    _, unit = _fail_join(lxd, cluster_pem, "Failed to join cluster: weird", unit=unit, join_id="j2")
    calls = len(lxd.calls)
    state = offered(cluster_pem, make_token("lxd-cluster-1", cluster_pem), app_extra={"join-id": "j3"}, unit=unit)
    out = ctx(1).run(ctx(1).on.update_status(), state)
    assert out.unit_status.name == "blocked" and lxd.calls[calls:].count("apply_preseed") == 0
    changed = dataclasses.replace(state, config={"storage-size": "30GiB"})
    out = ctx(1).run(ctx(1).on.config_changed(), changed)
    assert lxd.calls[calls:].count("apply_preseed") == 1  # the operator changed something: tried once more
    assert out.unit_status.name == "active" or membership(out) == "yes"


def test_a_transient_failure_backs_off_before_the_next_try(lxd, cluster_pem):
    _, unit = _fail_join(lxd, cluster_pem, "Failed to join cluster: first thing")
    assert unit["join-retry"]  # the first retry is immediate
    _, unit = _fail_join(lxd, cluster_pem, "Failed to join cluster: another thing", unit=unit, join_id="j2")
    assert unit["join-attempts"] == "2" and "join-blocked" not in unit
    state = offered(cluster_pem, make_token("lxd-cluster-1", cluster_pem), app_extra={"join-id": "j3"}, unit=unit)
    calls = len(lxd.calls)
    out = ctx(1).run(ctx(1).on.update_status(), state)
    assert "next try at" in out.unit_status.message and "apply_preseed" not in lxd.calls[calls:]


def test_the_issuer_skips_a_joiner_that_backs_off(lxd, cluster_pem):
    import time

    lxd.be_member("lxd-cluster-0")
    peers = {1: announced(1, **{"join-retry": str(int(time.time()) + 300)}), 2: announced(2)}
    out = ctx().run(ctx().on.update_status(), make_state(leader=True, app=published(cluster_pem), peers=peers))
    assert [o["join-unit"] for o in offers(out.get_relation(REL).local_app_data)] == ["lxd-cluster/2"]


def test_one_join_error_forever_costs_two_tokens_not_one_per_hook(lxd, cluster_pem):
    """Issue 13, item 3: 16 tokens in 150 hooks. Issuer and joiner in turn, the join always failing."""
    joiner = FakeLXD(cluster_pem)
    lxd.be_member("lxd-cluster-0")
    app, unit, secrets = published(cluster_pem), announced(1), []
    for _ in range(20):
        state = make_state(leader=True, app=app, peers={1: unit}, secrets=secrets, planned_units=2)
        out = ctx().run(ctx().on.update_status(), state)
        app = dict(out.get_relation(REL).local_app_data)
        secrets = [dataclasses.replace(s, owner=None) for s in out.secrets if s.label != "membership"]
        import charm

        charm.LXD, saved = (lambda: joiner), charm.LXD
        try:
            joiner.fail_next_preseed = "Failed to join cluster: the same thing"
            state = make_state(ip="10.0.0.2", app=app, unit=unit, secrets=secrets)
            unit = dict(ctx(1).run(ctx(1).on.update_status(), state).get_relation(REL).local_unit_data)
        finally:
            charm.LXD = saved
        secrets = [dataclasses.replace(s, owner="app") for s in secrets]
    assert lxd.calls.count("issue_join_token") == 2
    assert joiner.calls.count("apply_preseed") == 2


def test_a_join_that_timed_out_but_went_through_counts_as_joined(lxd, cluster_pem):
    state = offered(cluster_pem, make_token("lxd-cluster-1", cluster_pem))
    real = lxd.apply_preseed

    def slow(preseed, timeout=300):
        real(preseed)  # LXD joined ...
        raise LXDError("lxd init --preseed did not finish within 300s")  # ... but the hook gave up waiting

    lxd.apply_preseed = slow
    out = ctx(1).run(ctx(1).on.config_changed(), state)
    unit = out.get_relation(REL).local_unit_data
    assert membership(out) == "yes" and "join-failed" not in unit
