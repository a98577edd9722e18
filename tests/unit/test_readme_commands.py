"""README's side-by-side commands (section "Juju 2.9, 3.x and 4.0") are taken by the client they
are written for and refused by the other: each line through JujuSim's client of that version
(tests/harness/juju.py JujuSim.cli), against the charm's own actions.yaml, with a charm that
answers every action with the parameters Juju handed it."""

from __future__ import annotations

from pathlib import Path

import ops
import pytest
import yaml

from tests.harness.juju import JujuRefused, JujuSim

ROOT = Path(__file__).parents[2]
ACTIONS = yaml.safe_load((ROOT / "actions.yaml").read_text())
META = {
    "name": "lxd-cluster",
    "peers": {"cluster": {"interface": "lxd_cluster_peers"}},
    "provides": {"lxd-cluster": {"interface": "lxd_cluster"}},
}


class Echo(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        for name in ACTIONS:
            framework.observe(self.on[name.replace("-", "_")].action, self._echo)

    def _echo(self, event: ops.ActionEvent) -> None:
        event.set_results({k.replace("_", "-"): str(v) for k, v in event.params.items()})


def readme_commands() -> dict[str, list[str]]:
    """The bash block of the section: the lines under `# Juju 2.9` and under `# Juju 3.x and 4.0`."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Juju 2.9, 3.x and 4.0") :]
    block = section[section.index("```bash\n") + 8 : section.index("```\n", section.index("```bash\n") + 8)]
    commands: dict[str, list[str]] = {}
    for line in block.splitlines():
        if line.startswith("# Juju"):
            current = commands.setdefault(line, [])
        elif line.strip():
            current.append(line)
    return commands


def sim_for(version: str) -> JujuSim:
    sim = JujuSim(
        Echo,
        env_for_unit=lambda uid: {},
        address_for_unit=lambda uid: f"10.9.0.{uid + 1}",
        juju_version=version,
        context_kw={"meta": META, "actions": ACTIONS, "config": {"options": {}}},
    )
    sim.deploy(2)
    sim.settle()
    return sim


@pytest.mark.parametrize(
    "version, block, other",
    [("2.9", "# Juju 2.9", "3.6"), ("3.6", "# Juju 3.x and 4.0", "2.9"), ("4.0", "# Juju 3.x and 4.0", "2.9")],
    ids=["juju29", "juju36", "juju40"],
)
def test_readme_side_by_side_commands_work_on_their_juju_and_not_the_other(version, block, other):
    commands = readme_commands()[block]
    assert len(commands) == 4
    sim, wrong = sim_for(version), sim_for(other)
    for line in commands:
        outcome = sim.cli(line)
        if isinstance(outcome, int):  # relate: the relation's id
            assert sim.remote[outcome][:2] == ("lxd-cluster", "my-runner")
            continue
        assert outcome.ok, (line, outcome.failure)
        assert outcome.results["name"] in ("c1", "pinned", "lxd-cluster-1")
        with pytest.raises(JujuRefused):
            wrong.cli(line)
    launched = [sim.cli(line).results for line in commands if " launch " in line]
    assert launched[1] == {"name": "pinned", "image": "ubuntu:24.04", "target": "lxd-cluster-3"}
