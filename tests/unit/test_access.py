"""Least privilege: what a client is granted, token lifetimes set where LXD has them and enforced by the
leader where it has not, and the cluster and metrics ports opened for `juju expose`."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import json

import pytest
from fake_lxd import EXPIRES_AT, FakeLXD
from ops import testing
from states import ctx, make_state, published

from access import AccessError, grant_for, secure_tokens
from config import load_config
from models import PendingToken

NOW = datetime.datetime(2030, 1, 1, 2, 0, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize(
    "projects, access, granted",
    [
        (("web", "ci", "ci"), "admin", ("ci", "web")),  # what it names, even where admin is allowed
        ((), "own-project", ("runner",)),
        ((), "admin", None),
    ],
)
def test_grant_for(projects, access, granted):
    assert grant_for(projects, "runner", access) == granted


def test_grant_for_refuses_an_application_naming_no_projects_when_told_to():
    with pytest.raises(AccessError, match="name the LXD projects"):
        grant_for((), "runner", "refuse")


def test_an_application_named_default_does_not_get_lxds_default_project_as_its_own():
    with pytest.raises(AccessError, match="named default cannot have a project of its own"):
        grant_for((), "default", "own-project")
    assert grant_for(("default",), "default", "own-project") == ("default",)  # asked for explicitly: yes


def test_the_leader_sets_both_token_lifetimes_from_the_options(lxd: FakeLXD, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    config = {"join-token-expiry": "30M", "client-token-expiry": "2H"}
    ctx().run(ctx().on.config_changed(), make_state(leader=True, app=published(cluster_pem), config=config))
    assert lxd.config["cluster.join_token_expiry"] == "30M"
    assert lxd.config["core.remote_token_expiry"] == "2H"
    assert "revoke_token" not in lxd.calls  # LXD enforces them itself


def test_a_non_leader_member_leaves_the_cluster_config_to_the_leader(lxd: FakeLXD, cluster_pem):
    lxd.be_member("lxd-cluster-1", "lxd-cluster-0")
    ctx(1).run(ctx(1).on.config_changed(), make_state(ip="10.0.0.2", app=published(cluster_pem)))
    assert "core.remote_token_expiry" not in lxd.config


def test_where_lxd_has_no_expiry_keys_the_leader_revokes_unused_tokens_older_than_their_lifetime(
    lxd: FakeLXD, cluster_pem
):
    lxd.be_member("lxd-cluster-0")
    lxd.extensions -= {"cluster_join_token_expiry", "remote_token_expiry"}
    lxd.pending = [
        PendingToken("old-join", "join", "outside-1", "2030-01-01T00:59:59.123456789Z"),  # 1 h 1 s old
        PendingToken("new-join", "join", "outside-2", "2030-01-01T01:30:00Z"),
        PendingToken("old-client", "client", "laptop", "2030-01-01T01:29:00Z"),  # 31 min: client lifetime 30M
    ]
    config = load_config({"client-token-expiry": "30M"})
    secure_tokens(lxd, config, lxd.info(), now=NOW)
    assert [t.operation_id for t in lxd.pending] == ["new-join"]
    assert not {"cluster.join_token_expiry", "core.remote_token_expiry"} & set(lxd.config)


def test_where_lxd_has_one_key_only_the_other_kind_is_revoked_by_the_leader(lxd: FakeLXD):
    lxd.be_member("lxd-cluster-0")
    lxd.extensions -= {"remote_token_expiry"}
    lxd.pending = [
        PendingToken("old-join", "join", "outside-1", "2029-12-31T00:00:00Z"),  # LXD expires this one itself
        PendingToken("old-client", "client", "laptop", "2029-12-31T00:00:00Z"),
    ]
    secure_tokens(lxd, load_config({}), lxd.info(), now=NOW)
    assert [t.operation_id for t in lxd.pending] == ["old-join"]
    set_here = {k: v for k, v in lxd.config.items() if k != "core.metrics_address"}  # be_member's, not ours
    assert set_here == {"cluster.join_token_expiry": "1H"}


def test_a_member_opens_the_ports_its_lxd_listens_on(lxd: FakeLXD, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    out = ctx().run(ctx().on.update_status(), make_state(leader=True, app=published(cluster_pem)))
    assert out.opened_ports == {testing.TCPPort(8443), testing.TCPPort(8444)}


def test_a_changed_metrics_port_is_the_one_opened(lxd: FakeLXD, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    state = make_state(leader=True, app=published(cluster_pem), config={"metrics-port": 9100})
    state = dataclasses.replace(state, opened_ports={testing.TCPPort(8443), testing.TCPPort(8444)})
    out = ctx().run(ctx().on.config_changed(), state)
    assert out.opened_ports == {testing.TCPPort(8443), testing.TCPPort(9100)}
    assert lxd.config["core.metrics_address"].endswith(":9100")


def test_a_unit_that_is_not_a_member_opens_nothing(lxd: FakeLXD, cluster_pem):
    out = ctx(2).run(ctx(2).on.update_status(), make_state(ip="10.0.0.3", app=published(cluster_pem)))
    assert out.opened_ports == frozenset()


def test_the_first_join_token_is_issued_under_the_configured_lifetime(lxd: FakeLXD, cluster_pem):
    """Bootstrap and the first join credential happen in one hook: the lifetime is set before it."""
    from states import announced

    out = ctx().run(ctx().on.install(), make_state(leader=True, peers={1: announced(1)}))
    token = json.loads(base64.b64decode(lxd.tokens["lxd-cluster-1"]))
    assert token["expires_at"] == EXPIRES_AT  # LXD stamps an expiry only when the key was set first
    assert lxd.config["cluster.join_token_expiry"] == "1H"
    assert json.loads(out.get_relation(1).local_app_data["join-queue"])[0][0] == "lxd-cluster/1"
