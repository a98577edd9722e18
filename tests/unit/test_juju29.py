"""The charm under Juju 2.9 (JUJU_VERSION=2.9.49): no secrets. Join tokens travel sealed to each
joiner's own key in the issuer's queue, membership in the unit databag's `member`, the MAAS key as
itself, and the metrics key only with consent; bad input gets a clear status, never a hook error.

Honest about 2.9: its agent has no secret-* hook tools. ops runs a hook tool as a subprocess
(ops/hookcmds/_utils.py `run`: subprocess.run, catching only CalledProcessError), so a missing one
raises FileNotFoundError out of the hook. The `no_secret_tools` fixture makes every secret-* call of
ops.testing's backend do that (ops.testing itself refuses only secret reads before 3.0.2,
scenario/mocking.py `_get_secret`, and lets secret-add through), and records it.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import json
import stat
import tarfile
from pathlib import Path

import pytest
from fake_lxd import make_token
from ops import testing
from scenario.mocking import _MockModelBackend
from states import REL, announced, make_state, offer, offers, published

import charm
import observability
import unit_key
from models import PendingToken
from sealing import SealError, is_sealed, public_key, seal, unseal

JUJU29 = "2.9.49"
MAAS_KEY = "consumer:token:maas-api-key-itself"


@pytest.fixture(autouse=True)
def no_secret_tools(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every secret-* hook tool is missing, as on Juju 2.9: a call fails the hook. Returns the calls."""
    calls: list[str] = []
    for name in [n for n in dir(_MockModelBackend) if n.startswith("secret_")]:
        tool = name.replace("_", "-")

        def missing(*_args, _tool=tool, **_kwargs):
            calls.append(_tool)
            raise FileNotFoundError(2, "No such file or directory", _tool)

        monkeypatch.setattr(_MockModelBackend, name, missing)
    return calls


@pytest.fixture
def root(tmp_path: Path):
    """Each unit's charm directory (JUJU_CHARM_DIR): its sealing key lives there across hooks."""

    def of(uid: int) -> Path:
        path = tmp_path / f"unit-{uid}"
        path.mkdir(exist_ok=True)
        return path

    return of


def ctx29(root, uid: int = 0) -> testing.Context:
    return testing.Context(charm.LXDClusterCharm, unit_id=uid, juju_version=JUJU29, charm_root=root(uid))


def key_of(root, uid: int) -> str:
    """Unit uid's public key, as it publishes it (its private key made on its "machine")."""
    return public_key(unit_key.private_key(root(uid)))


def every_databag(out: testing.State) -> str:
    """Every app and unit databag of every relation this unit sees, as one text."""
    bags = []
    for rel in out.relations:
        bags += [rel.local_app_data, rel.local_unit_data]
        bags += [getattr(rel, "remote_app_data", {})] + list(getattr(rel, "peers_data", {}).values())
        bags += list(getattr(rel, "remote_units_data", {}).values())
    return json.dumps(bags)


def shown(ctx: testing.Context, out: testing.State) -> str:
    """Everything the hook told Juju outside the databags: status and juju-log."""
    return json.dumps([out.unit_status.message, [line.message for line in ctx.juju_log]])


def secret_of(token: str) -> str:
    return json.loads(base64.b64decode(token))["secret"]


def leader_member(root, lxd, cluster_pem, peers: dict[int, dict[str, str]], app=None, **kw) -> testing.State:
    lxd.be_member("lxd-cluster-0")
    return make_state(leader=True, app=app or published(cluster_pem), peers=peers, **kw)


def queued(cluster_pem: str, *entries: tuple[str, str, str]) -> dict[str, str]:
    """The leader's app databag with the issuer's queue: (unit, sealed token, join id), in join order."""
    return {**published(cluster_pem), "join-queue": json.dumps([list(e) for e in entries])}


# -- formation -------------------------------------------------------------------------------------
def test_juju29_the_leader_bootstraps_and_says_member_in_its_databag(lxd, root, no_secret_tools):
    ctx = ctx29(root)
    out = ctx.run(ctx.on.config_changed(), make_state(leader=True))
    bag = out.get_relation(REL).local_unit_data
    assert len(lxd.preseeds) == 1 and out.unit_status.message.startswith("member lxd-cluster-0 of 1 ")
    assert bag["member"] == "yes" and "member-secret" not in bag  # relation-changed tells the next joiner
    assert not out.secrets and no_secret_tools == []


def test_juju29_a_joiner_publishes_its_public_key_and_keeps_the_private_key_on_its_machine(
    lxd, root, cluster_pem, no_secret_tools
):
    ctx = ctx29(root, 1)
    out = ctx.run(ctx.on.config_changed(), make_state(ip="10.0.0.2", app=published(cluster_pem)))
    bag = out.get_relation(REL).local_unit_data
    private = unit_key.key_path(root(1))
    assert bag["seal-key"] == public_key(private.read_bytes())
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert base64.b64encode(private.read_bytes()).decode() not in every_databag(out)
    assert out.unit_status == testing.WaitingStatus("waiting for a join credential (joins go one at a time)")
    assert no_secret_tools == []


def test_juju29_the_issuer_seals_each_token_to_its_joiner_and_no_databag_or_log_holds_it(
    lxd, root, cluster_pem, no_secret_tools
):
    peers = {uid: announced(uid, **{"seal-key": key_of(root, uid)}) for uid in (1, 2)}
    state = leader_member(root, lxd, cluster_pem, peers)
    ctx = ctx29(root)
    out = ctx.run(ctx.on.relation_changed(state.get_relation(REL), remote_unit=1), state)
    app = out.get_relation(REL).local_app_data
    assert [o["join-unit"] for o in offers(app)] == ["lxd-cluster/1", "lxd-cluster/2"]
    for uid, other in ((1, 2), (2, 1)):
        token = lxd.tokens[f"lxd-cluster-{uid}"]
        sealed = offer(app, f"lxd-cluster/{uid}")["join-secret"]
        assert is_sealed(sealed)
        assert unseal(sealed, unit_key.private_key(root(uid)), f"lxd-cluster/{uid}") == token
        with pytest.raises(SealError):  # the other joiner cannot open it, not even under its own name
            unseal(sealed, unit_key.private_key(root(other)), f"lxd-cluster/{other}")
        for text in (every_databag(out), shown(ctx, out)):
            assert token not in text and secret_of(token) not in text
    assert not out.secrets and no_secret_tools == []


def test_juju29_a_joiner_opens_its_sealed_token_joins_and_says_member(lxd, root, cluster_pem, no_secret_tools):
    token = make_token("lxd-cluster-1", cluster_pem)
    app = queued(cluster_pem, ("lxd-cluster/1", seal(token, key_of(root, 1), "lxd-cluster/1"), "q1"))
    ctx = ctx29(root, 1)
    out = ctx.run(ctx.on.update_status(), make_state(ip="10.0.0.2", app=app))
    assert [p["cluster"]["cluster_token"] for p in lxd.preseeds] == [token]
    assert out.get_relation(REL).local_unit_data["member"] == "yes"
    assert token not in every_databag(out) and secret_of(token) not in shown(ctx, out)
    assert no_secret_tools == []


def test_juju29_the_next_joiner_waits_until_the_databag_says_the_one_before_is_a_member(
    lxd, root, cluster_pem, no_secret_tools
):
    """No secret-changed on 2.9: the `member` flag in unit 1's databag, which relation-changed carries."""
    sealed = seal(make_token("lxd-cluster-2", cluster_pem), key_of(root, 2), "lxd-cluster/2")
    app = queued(cluster_pem, ("lxd-cluster/1", "sealed:x", "q1"), ("lxd-cluster/2", sealed, "q2"))
    ctx = ctx29(root, 2)
    before = make_state(ip="10.0.0.3", app=app, peers={1: announced(1)})
    out = ctx.run(ctx.on.relation_changed(before.get_relation(REL), remote_unit=1), before)
    assert out.unit_status == testing.WaitingStatus("waiting for lxd-cluster/1 to join first (joins go one at a time)")
    assert lxd.preseeds == []
    after = make_state(ip="10.0.0.3", app=app, peers={1: announced(1, member="yes")})
    ctx.run(ctx.on.relation_changed(after.get_relation(REL), remote_unit=1), after)
    assert [p["cluster"]["server_name"] for p in lxd.preseeds] == ["lxd-cluster-2"]
    assert no_secret_tools == []


def test_juju29_a_sealed_token_waiting_its_turn_is_resealed_fresh_after_half_its_lifetime(
    lxd, root, cluster_pem, no_secret_tools
):
    """The 3.x path puts a new revision in the same secret; on 2.9 the issuer writes the queue with a
    newly sealed token under the same join id (a young token is left alone)."""
    lxd.be_member("lxd-cluster-0")
    keys = {uid: key_of(root, uid) for uid in (1, 2)}
    old = {uid: lxd.issue_join_token(f"lxd-cluster-{uid}") for uid in (1, 2)}
    now = datetime.datetime.now(datetime.timezone.utc)
    lxd.pending = [
        PendingToken(f"op{uid}", "join", f"lxd-cluster-{uid}", (now - datetime.timedelta(minutes=age)).isoformat())
        for uid, age in ((1, 40), (2, 10))
    ]
    entries = [(f"lxd-cluster/{uid}", seal(old[uid], keys[uid], f"lxd-cluster/{uid}"), f"q{uid}") for uid in (1, 2)]
    peers = {uid: announced(uid, **{"seal-key": keys[uid]}) for uid in (1, 2)}
    ctx = ctx29(root)
    out = ctx.run(
        ctx.on.update_status(), leader_member(root, lxd, cluster_pem, peers, app=queued(cluster_pem, *entries))
    )
    app = out.get_relation(REL).local_app_data
    first, second = offer(app, "lxd-cluster/1"), offer(app, "lxd-cluster/2")
    assert first["join-id"] == "q1"
    assert [second["join-secret"], second["join-id"]] == [entries[1][1], "q2"]  # young: left as it was
    opened = unseal(first["join-secret"], unit_key.private_key(root(1)), "lxd-cluster/1")
    assert opened == lxd.tokens["lxd-cluster-1"] != old[1]
    assert lxd.tokens["lxd-cluster-1"] not in every_databag(out) and no_secret_tools == []


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize("formed", [False, True])
def test_juju29_a_secret_uri_for_maas_api_key_is_blocked_and_changes_nothing(lxd, root, cluster_pem, formed):
    config = {"maas-api-url": "http://maas:5240/MAAS", "maas-api-key": "secret:cq1b2c3d4e5f6g7h8i9j"}
    state = (
        leader_member(root, lxd, cluster_pem, {}, config=config) if formed else make_state(leader=True, config=config)
    )
    ctx = ctx29(root)
    out = ctx.run(ctx.on.config_changed(), state)
    assert out.unit_status == testing.BlockedStatus(
        "maas-api-key holds a secret URI, but this Juju has no user secrets (Juju 3.3 and later have them): "
        "set maas-api-key to the MAAS API key itself"
    )
    assert lxd.mutations() == [] and "maas.api.key" not in lxd.config


def test_juju29_the_maas_key_itself_reaches_lxd_and_status_says_it_is_plain_config(lxd, root, cluster_pem):
    config = {"maas-api-url": "http://maas:5240/MAAS", "maas-api-key": MAAS_KEY}
    ctx = ctx29(root)
    out = ctx.run(ctx.on.config_changed(), leader_member(root, lxd, cluster_pem, {}, config=config))
    assert lxd.config["maas.api.key"] == MAAS_KEY
    assert out.unit_status.message.endswith("; maas-api-key: the key itself in config (this Juju has no user secrets)")
    assert MAAS_KEY not in every_databag(out) and MAAS_KEY not in shown(ctx, out)


def test_on_juju_3_a_plain_maas_key_is_refused_naming_juju_add_secret(lxd, cluster_pem):
    """Where Juju can keep the key in a user secret, it never sits in plain config."""
    ctx = testing.Context(charm.LXDClusterCharm, juju_version="3.6.14")
    lxd.be_member("lxd-cluster-0")
    config = {"maas-api-url": "http://maas:5240/MAAS", "maas-api-key": MAAS_KEY}
    out = ctx.run(ctx.on.config_changed(), make_state(leader=True, app=published(cluster_pem), config=config))
    assert out.unit_status.name == "blocked" and "juju add-secret" in out.unit_status.message
    assert "maas.api.key" not in lxd.config and MAAS_KEY not in out.unit_status.message


def _tampered(sealed: str) -> str:
    blob = bytearray(base64.b64decode(sealed.removeprefix("sealed:")))
    blob[-1] ^= 0x01
    return "sealed:" + base64.b64encode(bytes(blob)).decode()


def assert_a_fresh_token_opens_for_unit_1(root, lxd, cluster_pem, bag: dict[str, str], app: dict[str, str]) -> None:
    """The issuer hears unit 1's databag (offer q1 failed, or a new key) and seals a fresh token to its key."""
    issuer = leader_member(root, lxd, cluster_pem, {1: dict(bag)}, app=app, planned_units=2)
    ctx = ctx29(root)
    issued = ctx.run(ctx.on.relation_changed(issuer.get_relation(REL), remote_unit=1), issuer)
    fresh = offer(issued.get_relation(REL).local_app_data, "lxd-cluster/1")
    assert fresh["join-id"] != "q1"
    assert unseal(fresh["join-secret"], unit_key.private_key(root(1)), "lxd-cluster/1") == lxd.tokens["lxd-cluster-1"]


@pytest.mark.parametrize("case", ["tampered", "sealed to another unit"])
def test_juju29_a_token_that_does_not_open_asks_for_a_fresh_one_without_a_hook_error(
    lxd, root, cluster_pem, no_secret_tools, case
):
    token = make_token("lxd-cluster-1", cluster_pem)
    if case == "tampered":
        sealed = _tampered(seal(token, key_of(root, 1), "lxd-cluster/1"))
    else:
        sealed = seal(token, key_of(root, 2), "lxd-cluster/2")
    app = queued(cluster_pem, ("lxd-cluster/1", sealed, "q1"))
    ctx = ctx29(root, 1)
    out = ctx.run(ctx.on.update_status(), make_state(ip="10.0.0.2", app=app))  # raises on a hook error
    assert out.unit_status.name == "waiting"
    assert "does not open with this unit's key" in out.unit_status.message
    assert out.unit_status.message.endswith("waiting for a fresh one")
    assert lxd.preseeds == []
    bag = out.get_relation(REL).local_unit_data
    assert bag["join-failed"] == "q1"  # what the issuer reads to issue a fresh one
    assert_a_fresh_token_opens_for_unit_1(root, lxd, cluster_pem, bag, app)
    assert no_secret_tools == []


def test_juju29_a_unit_whose_key_file_vanished_rekeys_and_gets_a_fresh_token(lxd, root, cluster_pem, no_secret_tools):
    old_key = key_of(root, 1)
    sealed = seal(make_token("lxd-cluster-1", cluster_pem), old_key, "lxd-cluster/1")
    app = queued(cluster_pem, ("lxd-cluster/1", sealed, "q1"))
    unit_key.key_path(root(1)).unlink()  # the machine lost it
    ctx = ctx29(root, 1)
    state = make_state(ip="10.0.0.2", app=app, unit=announced(1, **{"seal-key": old_key}))
    out = ctx.run(ctx.on.update_status(), state)  # raises on a hook error
    bag = out.get_relation(REL).local_unit_data
    assert bag["seal-key"] != old_key and bag["seal-key"] == key_of(root, 1)  # re-keyed and published
    assert "waiting for a fresh one" in out.unit_status.message and lxd.preseeds == []
    assert_a_fresh_token_opens_for_unit_1(root, lxd, cluster_pem, bag, app)  # sealed to the new key
    assert no_secret_tools == []


# -- metrics ---------------------------------------------------------------------------------------
def scraper() -> testing.Relation:
    return testing.Relation("metrics-endpoint", id=REL + 1, remote_app_name="prometheus")


@pytest.mark.parametrize("consent", [False, True])
def test_juju29_prometheus_gets_the_metrics_key_only_with_consent_and_status_says_so(
    lxd, root, cluster_pem, no_secret_tools, consent
):
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1")
    state = make_state(leader=True, app=published(cluster_pem), config={"metrics-key-in-relation-data": consent})
    state = dataclasses.replace(state, relations=[*state.relations, scraper()])
    ctx = ctx29(root)
    out = ctx.run(ctx.on.config_changed(), state)
    job = json.loads(out.get_relation(REL + 1).local_app_data["scrape_jobs"])[0]
    stored = root(0) / observability.CERTIFICATE_FILE
    if consent:
        content = json.loads(stored.read_text())
        assert stat.S_IMODE(stored.stat().st_mode) == 0o600
        assert job["tls_config"]["key_file"] == content["key"]
        assert observability.NO_KEY_ON_29 not in out.unit_status.message
        assert content["key"] not in shown(ctx, out)
    else:
        assert "key_file" not in job["tls_config"] and not stored.exists()
        assert out.unit_status.message.endswith(observability.NO_KEY_ON_29)
    assert out.unit_status.name == "active" and no_secret_tools == []


# -- support ---------------------------------------------------------------------------------------
def test_juju29_the_debug_bundle_asks_for_no_secret_and_strikes_the_maas_key_itself(
    lxd, root, cluster_pem, no_secret_tools, tmp_path
):
    lxd.be_member("lxd-cluster-0")
    lxd.warnings = [{"type": "maas", "last_message": f"MAAS refused {MAAS_KEY}", "status": "new"}]  # innocent key
    config = {"maas-api-url": "http://maas:5240/MAAS", "maas-api-key": MAAS_KEY}
    ctx = ctx29(root)
    ctx.run(ctx.on.action("debug", params={"directory": str(tmp_path)}), make_state(leader=True, config=config))
    with tarfile.open(ctx.action_results["path"]) as tar:
        bundle = "".join(tar.extractfile(m).read().decode() for m in tar.getmembers())
    assert "MAAS refused" in bundle and MAAS_KEY not in bundle
    assert no_secret_tools == []


def test_juju29_a_certificates_relation_is_named_unused_and_the_cluster_keeps_its_certificate(
    lxd, root, cluster_pem, no_secret_tools
):
    """The tls-certificates library keeps its key in Juju secrets: on 2.9 the charm does not start it,
    says so in the leader's status, and installs nothing (no hook error, no secret-* call)."""
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1")
    provider = testing.Relation("certificates", remote_app_name="vault", id=REL + 2)
    state = make_state(leader=True, app=published(cluster_pem))
    state = dataclasses.replace(state, relations=[*state.relations, provider])
    ctx = ctx29(root)
    out = ctx.run(ctx.on.relation_changed(provider, remote_unit=0), state)
    assert out.unit_status.name == "active", out.unit_status
    assert "certificates: this Juju has no secrets" in out.unit_status.message
    assert "vault's certificate is not used" in out.unit_status.message
    assert "update_cluster_certificate" not in lxd.calls and no_secret_tools == []
    assert out.get_relation(REL + 2).local_app_data == {}  # no certificate request published
