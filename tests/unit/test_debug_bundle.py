"""debug_bundle.py and the debug action: what the bundle holds, and that no secret gets into it."""

from __future__ import annotations

import base64
import json
import tarfile
from pathlib import Path

from fake_lxd import FakeLXD
from ops import testing
from states import announced, ctx, make_state, published

from debug_bundle import write_bundle
from metrics import generate_certificate
from models import Instance
from redaction import REDACTED

TOKEN = base64.b64encode(
    json.dumps(
        {"server_name": "m1", "fingerprint": "ab" * 32, "addresses": ["10.0.0.1:8443"], "secret": "s3cr3t" * 8}
    ).encode()
).decode()


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
