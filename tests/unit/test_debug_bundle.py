"""debug_bundle.py and the debug action: what the bundle holds, and that no secret gets into it."""

from __future__ import annotations

import base64
import json
import tarfile
from pathlib import Path

import pytest
from fake_lxd import FakeLXD
from ops import testing
from states import announced, ctx, make_state, published

from debug_bundle import REDACTED, redact, redact_text, write_bundle
from metrics import generate_certificate
from models import Instance

TOKEN = base64.b64encode(
    json.dumps(
        {"server_name": "m1", "fingerprint": "ab" * 32, "addresses": ["10.0.0.1:8443"], "secret": "s3cr3t" * 8}
    ).encode()
).decode()


@pytest.mark.parametrize(
    "data",
    [
        {"core.trust_password": "hunter2-long"},
        {"maas.api.key": "consumer:token:secret"},
        {"loki.auth.password": "pw-value-1"},
        {"key": "abcdefgh"},
        {"cluster_token": "whatever-it-is"},
        {"nested": [{"join-secret": "secret:abc123"}]},
    ],
    ids=["trust password", "maas key", "loki password", "secret content key", "token", "nested"],
)
def test_values_of_secret_keys_are_redacted(data):
    out = json.dumps(redact(data))
    assert REDACTED in out
    for value in ("hunter2-long", "consumer:token:secret", "pw-value-1", "abcdefgh", "whatever-it-is", "secret:abc123"):
        assert value not in out


def test_public_facts_are_kept():
    data = {"certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", "fingerprint": "ab" * 32}
    assert redact(data) == data
    assert redact({"core.https_address": "10.0.0.1:8443", "monkey": "x"}) == {
        "core.https_address": "10.0.0.1:8443",
        "monkey": "x",
    }


def test_private_keys_tokens_and_known_values_are_redacted_wherever_they_show():
    _, key = generate_certificate("m")
    text = f"log: joining with {TOKEN}\nconfig: {key}\nand the password pass-w0rd-99 in a message\n"
    out = redact_text(text, known=["pass-w0rd-99"])
    assert TOKEN not in out and "PRIVATE KEY" not in out and "pass-w0rd-99" not in out
    assert out.count(REDACTED) == 3 and out.startswith("log: joining with ")


def test_an_innocent_base64_blob_is_kept():
    blob = base64.b64encode(json.dumps({"fingerprint": "ab" * 32}).encode()).decode()
    assert redact_text(blob) == blob


def test_the_bundle_is_private_and_redacted(tmp_path):
    _, key = generate_certificate("m")
    path = write_bundle(
        {"a.json": {"note": f"token {TOKEN}", "innocent": "pass-w0rd-99"}, "lxd.log": f"key {key}"},
        str(tmp_path / "out"),
        "lxd-cluster-0",
        known=["pass-w0rd-99"],
    )
    assert path.stat().st_mode & 0o777 == 0o600
    with tarfile.open(path) as tar:
        names = tar.getnames()
        content = "".join(tar.extractfile(m).read().decode() for m in tar.getmembers())
    assert names == ["lxd-cluster-0/a.json", "lxd-cluster-0/lxd.log"]
    assert TOKEN not in content and "PRIVATE KEY" not in content and "pass-w0rd-99" not in content


def test_the_debug_action_bundles_what_the_unit_sees_and_redacts_its_secrets(lxd: FakeLXD, cluster_pem, tmp_path):
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1")
    lxd.config["core.trust_password"] = "trust-me-please"
    _, key = generate_certificate("m")
    metrics = testing.Secret(
        {"certificate": "c", "key": key, "note": "only-in-a-secret"}, label="metrics-client", owner="app"
    )
    # secrets under innocent keys: found by shape (the token) or because the charm can read them
    lxd.warnings = [{"type": "join", "last_message": f"join with {TOKEN} failed: only-in-a-secret", "status": "new"}]
    join = testing.Secret({"token": TOKEN}, owner="app")
    state = make_state(
        leader=True,
        app=published(cluster_pem, **{"join-secret": join.id, "join-unit": "lxd-cluster/1"}),
        peers={1: announced(1)},
        secrets=[metrics, join],
    )
    context = ctx()
    context.run(context.on.action("debug", params={"directory": str(tmp_path)}), state)
    results = context.action_results
    assert results["members"] == "lxd-cluster-0 (Online), lxd-cluster-1 (Online)" and results["warnings"] == 1
    with tarfile.open(results["path"]) as tar:
        files = {Path(m.name).name: tar.extractfile(m).read().decode() for m in tar.getmembers()}
    assert "lxd-cluster/1" in json.loads(files["charm.json"])["relation"]["units"]
    assert json.loads(files["server.json"])["config"]["core.trust_password"] == REDACTED
    bundle = "".join(files.values())
    for secret in ("trust-me-please", TOKEN, key, join.id, "only-in-a-secret"):
        assert secret not in bundle
    assert files["lxd.log"] == "no LXD log found\n"


def test_the_bundle_lists_the_instances_of_every_project_with_their_project(lxd: FakeLXD, cluster_pem, tmp_path):
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1")
    lxd.instance_rows = [
        Instance("web", "lxd-cluster-0", "Running"),
        Instance("web", "lxd-cluster-1", "Stopped", project="runner"),
    ]
    context = ctx()
    context.run(context.on.action("debug", params={"directory": str(tmp_path)}), make_state(leader=True))
    with tarfile.open(context.action_results["path"]) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/instances.json"))
        listed = json.loads(tar.extractfile(member).read())
    assert [(i["project"], i["name"], i["location"]) for i in listed] == [
        ("default", "web", "lxd-cluster-0"),
        ("runner", "web", "lxd-cluster-1"),
    ]
