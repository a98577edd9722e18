"""charmcraft.yaml, metadata.yaml, config.yaml, actions.yaml and README stay valid and in step."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text()) or {}


def test_charmcraft_builds_for_ubuntu_22_04_and_24_04_and_packs_src_and_lib():
    charmcraft = load("charmcraft.yaml")
    assert charmcraft["type"] == "charm"
    channels = sorted(b["run-on"][0]["channel"] for b in charmcraft["bases"])
    assert channels == ["22.04", "24.04"]
    assert {"src", "lib"} <= set(charmcraft["parts"]["charm"]["prime"])
    requirements = (ROOT / "requirements.txt").read_text()
    for package in ("ops", "pylxd", "pyyaml"):
        assert package in requirements


def test_metadata_declares_the_peer_relation_storage_and_client_endpoint():
    meta = load("metadata.yaml")
    assert meta["name"] == "lxd-cluster"
    assert meta["peers"]["cluster"]["interface"]
    assert meta["provides"]["lxd-cluster"]["interface"] == "lxd_cluster"
    local = meta["storage"]["local"]
    assert local["type"] == "block" and local["multiple"]["range"] == "0-1"


@pytest.mark.parametrize("name, spec", load("config.yaml")["options"].items())
def test_every_option_has_type_default_and_description(name, spec):
    assert spec["type"] in ("string", "int", "float", "boolean", "secret"), name
    assert spec.get("description", "").strip(), name
    if spec["type"] != "secret":  # Juju gives secret options no default
        assert "default" in spec, name


@pytest.mark.parametrize("name, spec", load("actions.yaml").items())
def test_every_action_and_param_is_typed_and_described(name, spec):
    assert spec.get("description", "").strip(), name
    assert spec.get("additionalProperties") is False, name
    for param, pspec in (spec.get("params") or {}).items():
        assert pspec.get("type") in ("string", "boolean", "integer", "number", "array", "object"), (name, param)
        assert pspec.get("description", "").strip(), (name, param)
    for required in spec.get("required", []):
        assert required in spec["params"], (name, required)


def test_no_key_appears_in_two_files():
    files = ["charmcraft.yaml", "metadata.yaml", "config.yaml", "actions.yaml"]
    seen: dict[str, str] = {}
    for name in files:
        for key in load(name):
            assert key not in seen, f"{key} is in both {seen.get(key)} and {name}"
            seen[key] = name


def test_every_action_has_a_handler_in_the_charm_and_no_more(monkeypatch, cluster_pem):
    from fake_lxd import FakeLXD
    from ops import testing

    import charm

    monkeypatch.setattr(charm, "LXD", lambda: FakeLXD(cluster_pem))
    ctx = testing.Context(charm.LXDClusterCharm)
    with ctx(ctx.on.update_status(), testing.State()) as manager:
        handled = set(manager.charm._actions)
    assert handled == set(load("actions.yaml"))


def test_readme_configuration_table_matches_config_yaml():
    spec = importlib.util.spec_from_file_location("config_table", ROOT / "scripts/config_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = (ROOT / "README.md").read_text()
    assert module.with_table(readme) == readme, "README's table is stale: python3 scripts/config_table.py --write"
