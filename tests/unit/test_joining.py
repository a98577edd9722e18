"""Tokens first, joins chained (issue 17): every waiting unit gets its credential in one issuer hook;
each joiner joins once the unit queued before it is a member; tokens never expire in the queue."""

from __future__ import annotations

import datetime
import time

from fake_lxd import make_token
from ops import testing
from states import REL, announced, ctx, make_state, offers, published

from models import PendingToken


def queued_for_2(pem: str, before: dict[str, str], secrets: list[testing.Secret], **kw) -> testing.State:
    """Unit 2's view: the issuer queued 1 then 2; `before` is unit 1's databag."""
    token = testing.Secret({"kind": "token", "value": make_token("lxd-cluster-2", pem)}, owner=None)
    queue = f'[["lxd-cluster/1","secret:{"1" * 20}","q1"],["lxd-cluster/2","{token.id}","q2"]]'
    app = {**published(pem), "join-queue": queue}
    peers = {1: before} if before is not None else {}
    return make_state(ip="10.0.0.3", app=app, peers=peers, secrets=[token, *secrets], **kw)


def membership_of(pem: str | None) -> testing.Secret:
    return testing.Secret({"member": "yes" if pem else "no"}, owner=None)


def test_a_joiner_waits_while_the_unit_queued_before_it_is_not_a_member(lxd, cluster_pem):
    theirs = membership_of(None)
    state = queued_for_2(cluster_pem, announced(1, **{"member-secret": theirs.id}), [theirs])
    out = ctx(2).run(ctx(2).on.relation_changed(state.get_relation(REL), remote_unit=0), state)
    assert out.unit_status == testing.WaitingStatus("waiting for lxd-cluster/1 to join first (joins go one at a time)")
    assert lxd.preseeds == []
    # it read the membership secret with refresh: Juju tells it (secret-changed) when 1 becomes a member
    assert next(s for s in out.secrets if s.id == theirs.id).tracked_content == {"member": "no"}


def test_a_joiner_joins_once_the_unit_before_it_is_a_member(lxd, cluster_pem):
    theirs = membership_of(cluster_pem)
    state = queued_for_2(cluster_pem, announced(1, **{"member-secret": theirs.id}), [theirs])
    ctx(2).run(ctx(2).on.secret_changed(theirs), state)
    assert len(lxd.preseeds) == 1 and lxd.preseeds[0]["cluster"]["server_name"] == "lxd-cluster-2"


def test_a_joiner_waits_for_a_unit_it_has_not_seen_yet(lxd, cluster_pem):
    """Juju lists a peer only from its relation-joined on: unseen is not gone."""
    state = queued_for_2(cluster_pem, None, [])
    out = ctx(2).run(ctx(2).on.update_status(), state)
    assert "waiting for lxd-cluster/1 to join first" in out.unit_status.message and lxd.preseeds == []


def test_a_unit_whose_join_failed_does_not_hold_up_the_next(lxd, cluster_pem):
    theirs = membership_of(None)
    failed = announced(1, **{"member-secret": theirs.id, "join-failed": "q1", "join-error": "boom"})
    ctx(2).run(ctx(2).on.update_status(), queued_for_2(cluster_pem, failed, [theirs]))
    assert len(lxd.preseeds) == 1


def test_the_first_in_the_queue_joins_at_once(lxd, cluster_pem):
    token = testing.Secret({"kind": "token", "value": make_token("lxd-cluster-1", cluster_pem)}, owner=None)
    app = {**published(cluster_pem), "join-queue": f'[["lxd-cluster/1","{token.id}","q1"]]'}
    ctx(1).run(ctx(1).on.update_status(), make_state(ip="10.0.0.2", app=app, secrets=[token]))
    assert len(lxd.preseeds) == 1


# -- the issuer ------------------------------------------------------------------------------------
def issuer_state(cluster_pem, secrets=(), app=None, **kw) -> testing.State:
    return make_state(leader=True, app=app or published(cluster_pem), secrets=list(secrets), **kw)


def test_a_token_waiting_its_turn_is_reissued_after_half_its_lifetime(lxd, cluster_pem):
    """join-token-expiry 1H: a token LXD made 40 minutes ago is replaced (same secret, new revision)
    before LXD lets it expire; one made 10 minutes ago is kept. No databag write: nobody runs a hook."""
    lxd.be_member("lxd-cluster-0")
    old, fresh = lxd.issue_join_token("lxd-cluster-1"), lxd.issue_join_token("lxd-cluster-2")
    now = datetime.datetime.now(datetime.timezone.utc)
    lxd.pending = [
        PendingToken(f"op{i}", "join", f"lxd-cluster-{i}", (now - datetime.timedelta(minutes=age)).isoformat())
        for i, age in ((1, 40), (2, 10))
    ]
    s1 = testing.Secret({"kind": "token", "value": old}, owner="app", label="join-lxd-cluster-1")
    s2 = testing.Secret({"kind": "token", "value": fresh}, owner="app", label="join-lxd-cluster-2")
    queue = f'[["lxd-cluster/1","{s1.id}","q1"],["lxd-cluster/2","{s2.id}","q2"]]'
    app = {**published(cluster_pem), "join-queue": queue}
    out = ctx().run(
        ctx().on.update_status(),
        issuer_state(cluster_pem, [s1, s2], app=app, peers={1: announced(1), 2: announced(2)}),
    )
    by_id = {s.id: s for s in out.secrets}
    assert by_id[s1.id].latest_content["value"] == lxd.tokens["lxd-cluster-1"] != old
    assert by_id[s2.id].latest_content["value"] == fresh
    assert lxd.calls.count("issue_join_token") == 3
    assert out.get_relation(REL).local_app_data["join-queue"] == queue


def test_a_token_is_not_reissued_while_it_is_young(lxd, cluster_pem):
    """With a lifetime of 2h, 40 minutes is young."""
    lxd.be_member("lxd-cluster-0")
    old = lxd.issue_join_token("lxd-cluster-1")
    now = datetime.datetime.now(datetime.timezone.utc)
    lxd.pending = [PendingToken("op1", "join", "lxd-cluster-1", (now - datetime.timedelta(minutes=40)).isoformat())]
    s1 = testing.Secret({"kind": "token", "value": old}, owner="app", label="join-lxd-cluster-1")
    app = {**published(cluster_pem), "join-queue": f'[["lxd-cluster/1","{s1.id}","q1"]]'}
    state = issuer_state(cluster_pem, [s1], app=app, peers={1: announced(1)}, config={"join-token-expiry": "2H"})
    ctx().run(ctx().on.update_status(), state)
    assert lxd.calls.count("issue_join_token") == 1


def test_the_issuer_waits_for_units_juju_is_still_bringing_up(lxd, cluster_pem):
    """Goal state says 4 units; 2 peers announced just now: one batch later beats one write per unit."""
    lxd.be_member("lxd-cluster-0")
    now = str(int(time.time()))
    peers = {1: announced(1, announced=now), 2: announced(2, announced=now)}
    out = ctx().run(ctx().on.update_status(), issuer_state(cluster_pem, peers=peers, planned_units=4))
    assert "join-queue" not in out.get_relation(REL).local_app_data and lxd.tokens == {}
    # ... but not for ever: a straggler holds the others back at most a minute
    peers = {1: announced(1, announced=str(int(now) - 61)), 2: announced(2, announced=now)}
    out = ctx().run(ctx().on.update_status(), issuer_state(cluster_pem, peers=peers, planned_units=4))
    assert [o["join-unit"] for o in offers(out.get_relation(REL).local_app_data)] == ["lxd-cluster/1", "lxd-cluster/2"]


def test_a_unit_on_another_lxd_version_gets_no_credential(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-0")
    peers = {1: {**announced(1), "lxd-version": "5.0.2"}, 2: announced(2)}
    out = ctx().run(ctx().on.update_status(), issuer_state(cluster_pem, peers=peers))
    assert [o["join-unit"] for o in offers(out.get_relation(REL).local_app_data)] == ["lxd-cluster/2"]


def test_a_unit_blocked_after_announcing_is_held_out_of_the_queue(lxd, cluster_pem):
    """It announced in its first hook, then a check blocked it (here: its storage-device is missing): it says so
    (join-held), the issuer gives it no token and the unit after it does not wait for it."""
    out = ctx(1).run(
        ctx(1).on.install(),
        make_state(ip="10.0.0.2", app=published(cluster_pem), config={"storage-device": "/dev/vdz"}),
    )
    unit = out.get_relation(REL).local_unit_data
    assert out.unit_status.name == "blocked" and unit["join-held"] == "yes" and unit["server-name"]

    theirs = membership_of(None)
    held = announced(1, **{"member-secret": theirs.id, "join-held": "yes"})
    ctx(2).run(ctx(2).on.update_status(), queued_for_2(cluster_pem, held, [theirs]))
    assert len(lxd.preseeds) == 1  # 2 joined without waiting for 1

    lxd.be_member("lxd-cluster-0")
    peers = {1: dict(unit), 2: announced(2)}
    issued = ctx().run(ctx().on.update_status(), issuer_state(cluster_pem, peers=peers))
    assert [o["join-unit"] for o in offers(issued.get_relation(REL).local_app_data)] == ["lxd-cluster/2"]


def test_a_held_unit_whose_check_passes_again_rejoins_the_queue(lxd, cluster_pem):
    state = make_state(ip="10.0.0.2", app=published(cluster_pem), unit=announced(1, **{"join-held": "yes"}))
    out = ctx(1).run(ctx(1).on.config_changed(), state)
    assert "join-held" not in out.get_relation(REL).local_unit_data


# -- a peer's hook brings no news of this host (issue 26) ------------------------------------------------
def checked_joiner(pem: str, theirs: testing.Secret) -> testing.State:
    """Unit 2, queued after 1, whose checks passed in an earlier hook (its databag says so)."""
    mine = announced(2, **{"network-checked": "bridged:br0", "network-interface": "eth0"})
    return queued_for_2(pem, announced(1, **{"member-secret": theirs.id}), [theirs], unit=mine)


def counting_inventory(lxd) -> list[int]:
    asked = []
    inventory = lxd.inventory
    lxd.inventory = lambda: asked.append(1) or inventory()
    return asked


def test_a_checked_joiner_waits_through_a_peers_hook_without_asking_lxd_what_it_holds(lxd, cluster_pem):
    from adoption import Inventory

    asked = counting_inventory(lxd)
    lxd.standalone = Inventory(instances=("c1",))  # not looked at: nothing is about to change here
    state = checked_joiner(cluster_pem, membership_of(None))
    out = ctx(2).run(ctx(2).on.relation_changed(state.get_relation(REL), remote_unit=0), state)
    assert out.unit_status == testing.WaitingStatus("waiting for lxd-cluster/1 to join first (joins go one at a time)")
    assert asked == [] and lxd.preseeds == []


def test_a_checked_joiner_checks_everything_again_when_its_turn_comes(lxd, cluster_pem):
    """Its turn comes with a peer's hook (the unit before it became a member): an instance made in its LXD
    since its checks passed is not erased; it is held out of the queue, nothing joined."""
    from adoption import Inventory

    asked = counting_inventory(lxd)
    lxd.standalone = Inventory(instances=("c1",))
    theirs = membership_of(cluster_pem)
    out = ctx(2).run(ctx(2).on.secret_changed(theirs), checked_joiner(cluster_pem, theirs))
    assert out.unit_status.name == "blocked" and "joining the cluster erases them" in out.unit_status.message
    assert asked == [1] and lxd.preseeds == []
    assert out.get_relation(REL).local_unit_data["join-held"] == "yes"


def test_a_checked_joiner_joins_on_its_turn_after_checking_again(lxd, cluster_pem):
    asked = counting_inventory(lxd)
    theirs = membership_of(cluster_pem)
    ctx(2).run(ctx(2).on.secret_changed(theirs), checked_joiner(cluster_pem, theirs))
    assert asked == [1] and len(lxd.preseeds) == 1


def test_config_changed_checks_a_checked_joiner_again(lxd, cluster_pem):
    """A hook that may bring news of the host or the options checks it, whoever is ahead in the queue."""
    asked = counting_inventory(lxd)
    ctx(2).run(ctx(2).on.config_changed(), checked_joiner(cluster_pem, membership_of(None)))
    assert asked == [1]
