"""charmcraft.yaml, metadata.yaml, config.yaml, actions.yaml and README stay valid and in step."""

from __future__ import annotations

import ast
import builtins
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scripts import platform_python

ROOT = Path(__file__).parents[2]


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text()) or {}


def test_charmcraft_yaml_names_platforms_and_packs_the_whole_charm():
    """charmcraft 3 and 4 refuse `bases:` for 24.04, and a `prime:` list filters out venv/ and hooks/."""
    charmcraft = load("charmcraft.yaml")
    assert charmcraft["type"] == "charm"
    assert "bases" not in charmcraft
    assert sorted(charmcraft["platforms"]) == ["ubuntu@22.04:amd64", "ubuntu@24.04:amd64"]
    part = charmcraft["parts"]["charm"]
    assert part["plugin"] == "charm" and "prime" not in part
    assert part["charm-entrypoint"] == "src/main.py"
    # the plugin builds the rest from source: whatever has compiled parts must come as a wheel
    assert {"cryptography", "cffi", "pyyaml"} <= set(part["charm-binary-python-packages"])
    requirements = (ROOT / "requirements.txt").read_text()
    for package in ("ops", "pylxd", "pyyaml", "pyopenssl", "charmlibs-snap", "charmhelpers", "setuptools"):
        assert package in requirements


def test_the_entrypoint_is_executable_in_git():
    """The packed dispatch runs `exec ./src/main.py`: without the bit every hook is 'Permission denied'."""
    listed = subprocess.run(["git", "ls-files", "-s", "src/main.py"], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0 or not listed.stdout:
        pytest.skip("not a git checkout")
    assert listed.stdout.split()[0] == "100755"
    assert (ROOT / "src/main.py").read_text().startswith("#!/usr/bin/env python3\n")


def test_the_entrypoint_imports_the_charm_so_no_hook_compiles_it():
    """Python compiles the script it runs on every start and caches only what is imported: the
    entrypoint is a few lines, charm.py (the flow) an imported module."""
    import ast

    entry = ast.parse((ROOT / "src/main.py").read_text())
    imported = {
        alias.name
        for node in ast.walk(entry)
        if isinstance(node, ast.ImportFrom) and node.module == "charm"
        for alias in node.names
    }
    assert imported == {"LXDClusterCharm"} and len((ROOT / "src/main.py").read_text().splitlines()) < 30
    assert "ops.main(" not in (ROOT / "src/charm.py").read_text()


def test_jujuignore_keeps_tests_and_tooling_out_of_the_charm():
    ignored = (ROOT / ".jujuignore").read_text().split()
    for path in ("/tests", "/docs", "/bench", "/demo", "/scripts", "/.ci"):
        assert path in ignored
    assert not {"/src", "/lib", "src", "lib"} & set(ignored)


def test_metadata_assumes_no_more_than_juju_2_9():
    """One artefact for Juju 2.9, 3.x and 4.x: what a version lacks is detected at run time."""
    assert load("metadata.yaml")["assumes"] == ["juju >= 2.9"]


def test_the_license_is_apache_2_and_pyproject_declares_it():
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    project = (ROOT / "pyproject.toml").read_text().split("[project]", 1)[1].split("\n[", 1)[0]
    assert 'license = "Apache-2.0"' in project.splitlines() and 'license-files = ["LICENSE"]' in project.splitlines()
    assert "LICENSE" not in (ROOT / ".jujuignore").read_text().split()  # shipped in the .charm


def test_metadata_has_no_link_that_leads_nowhere():
    """Issue 25.5: no invented repository, and no `docs:` that is LXD's, not this charm's."""
    meta = load("metadata.yaml")
    assert not {"docs", "issues", "source", "website", "contact"} & set(meta)


def test_metadata_declares_the_peer_relation_storage_and_client_endpoint():
    meta = load("metadata.yaml")
    assert meta["name"] == "lxd-cluster"
    assert meta["peers"]["cluster"]["interface"]
    assert meta["provides"]["lxd-cluster"]["interface"] == "lxd_cluster"
    local = meta["storage"]["local"]
    assert local["type"] == "block" and local["multiple"]["range"] == "0-1"


@pytest.mark.parametrize("name, spec", load("config.yaml")["options"].items())
def test_every_option_has_type_default_and_description(name, spec):
    # the types Juju 2.9 knows: it refuses a charm with any other (juju/charm config.go ReadConfig, `unknown type`)
    assert spec["type"] in ("string", "int", "float", "boolean"), name
    assert spec.get("description", "").strip(), name
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
    from actions import ClusterActions

    monkeypatch.setattr(charm, "LXD", lambda: FakeLXD(cluster_pem))
    ctx = testing.Context(charm.LXDClusterCharm)
    with ctx(ctx.on.update_status(), testing.State()) as manager:
        handled = set(ClusterActions(manager.charm.model, manager.charm.lxd).handlers)
        kinds = {kind for _, method, _, kind in manager.charm.framework._observers if method == "_on_action"}
    observed = {kind.removesuffix("_action").replace("_", "-") for kind in kinds}
    assert handled == set(load("actions.yaml")) == observed


def test_readme_configuration_table_matches_config_yaml():
    spec = importlib.util.spec_from_file_location("config_table", ROOT / "scripts/config_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = (ROOT / "README.md").read_text()
    assert module.with_table(readme) == readme, "README's table is stale: python3 scripts/config_table.py --write"


def test_a_pylxd_that_cannot_be_imported_is_an_error_with_its_cause_not_a_crash(monkeypatch):
    """Debian's python3-openssl under a newer cryptography raises AttributeError inside `import pylxd`."""
    import workload

    real_import = builtins.__import__

    def broken(name, *args, **kwargs):
        if name.startswith("pylxd"):
            raise AttributeError("module 'lib' has no attribute 'GEN_EMAIL'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", broken)
    with pytest.raises(workload.ClientUnavailable, match="cannot load pylxd .AttributeError: .*GEN_EMAIL"):
        workload.LXD("/nonexistent").issue_join_token("lxd-cluster-1")  # a write: through pylxd


def test_a_client_that_cannot_load_blocks_the_unit_with_the_cause(monkeypatch, cluster_pem):
    from fake_lxd import FakeLXD
    from ops import testing

    import charm
    import workload

    fake = FakeLXD(cluster_pem)

    def unavailable():
        raise workload.ClientUnavailable("cannot load pylxd (AttributeError: GEN_EMAIL)")

    monkeypatch.setattr(fake, "info", unavailable)
    monkeypatch.setattr(fake, "members", unavailable)
    monkeypatch.setattr(charm, "LXD", lambda: fake)
    ctx = testing.Context(charm.LXDClusterCharm)
    out = ctx.run(ctx.on.update_status(), testing.State(leader=True))
    assert out.unit_status == testing.BlockedStatus("cannot load pylxd (AttributeError: GEN_EMAIL)")
    assert fake.mutations() == []


def test_every_platform_is_packed_with_the_python_its_machines_run():
    """scripts/pack.sh builds each platform's venv with the CPython of that Ubuntu release."""
    assert {f"{p}:amd64" for p in platform_python.PLATFORM_PYTHON} == set(load("charmcraft.yaml")["platforms"])
    assert platform_python.PLATFORM_PYTHON == {"ubuntu@22.04": (3, 10), "ubuntu@24.04": (3, 12)}


def test_the_platform_python_is_pyenvs_newest_release_of_it_or_none(tmp_path, monkeypatch):
    want = sys.version_info[:2]
    minor = f"{want[0]}.{want[1]}"
    for release in ("2", "10", "9"):  # 10 is newer than 9: releases compare as numbers
        binary = tmp_path / f"versions/{minor}.{release}/bin/python{minor}"
        binary.parent.mkdir(parents=True)
        binary.symlink_to(sys.executable)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no pyenv, no python3.X on PATH
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    monkeypatch.setattr(platform_python, "PLATFORM_PYTHON", {"ubuntu@22.04": want, "ubuntu@24.04": (3, 99)})
    assert platform_python.find("ubuntu@22.04:amd64") == tmp_path / f"versions/{minor}.10/bin/python{minor}"
    assert platform_python.find("ubuntu@24.04") is None
    with pytest.raises(ValueError, match="ubuntu@20.04"):
        platform_python.find("ubuntu@20.04")


# -- the import graph (issue 26) -------------------------------------------------------------------
def _src_import_graph() -> dict[str, set[str]]:
    """Which src modules each src module imports, anywhere in it (a function-level import counts)."""
    src = ROOT / "src"
    modules = {path.stem for path in src.glob("*.py")}
    graph = {}
    for path in src.glob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        graph[path.stem] = (names & modules) - {path.stem}
    return graph


def test_src_modules_import_no_circle():
    graph = _src_import_graph()
    assert "command" in graph["devices"] and "command" in graph["workload"]  # the graph is read
    circles = []
    for start in graph:
        stack = [(start, [start])]
        while stack:
            module, path = stack.pop()
            for dep in graph[module]:
                if dep == start:
                    circles.append(path)
                elif dep not in path:
                    stack.append((dep, [*path, dep]))
    assert circles == []


def test_the_block_device_layer_loads_without_the_lxd_client():
    """devices.py sits under workload.py: importing it alone in a fresh interpreter loads no workload."""
    code = "import sys, devices; print('workload' in sys.modules)"
    env = {"PYTHONPATH": f"{ROOT / 'src'}:{ROOT / 'lib'}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "False"
