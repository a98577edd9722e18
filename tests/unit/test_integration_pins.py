"""The integration suite picks the python-libjuju and the CLI words for the controller it finds
(tests/integration/controller.py): checked here without a controller."""

from __future__ import annotations

import pytest

from tests.integration.controller import juju_args, pin_mismatch


@pytest.mark.parametrize(
    "agent, libjuju, fix",
    [("2.9.52", "3.6.1.3", "LXD_CLUSTER_JUJU=2.9"), ("3.6.11", "2.9.49.1", "LXD_CLUSTER_JUJU=3")],
    ids=["juju29", "juju36"],
)
def test_a_controller_the_installed_libjuju_does_not_serve_names_the_pin_to_install(agent, libjuju, fix):
    assert fix in pin_mismatch(agent, libjuju)
    assert pin_mismatch(agent, agent) == ""


def test_juju40_skips_as_no_libjuju_serves_it():
    assert "no python-libjuju serves Juju 4" in pin_mismatch("4.0.1", "3.6.1.3")


def test_juju29_gets_the_3x_commands_in_its_own_words():
    assert juju_args(["add-machine", "-n", "2", "--base", "ubuntu@22.04"], "2.9.52") == [
        "add-machine", "-n", "2", "--series", "jammy",
    ]  # fmt: skip
    assert juju_args(["remove-unit", "lxd-cluster/1", "--no-prompt"], "2.9.52") == ["remove-unit", "lxd-cluster/1"]
    assert juju_args(["show-task", "7"], "2.9.52") == ["show-action-output", "7"]
    assert juju_args(["exec", "--machine", "1", "--", "true"], "2.9.52")[0] == "run"
    assert juju_args(["show-task", "7", "--no-prompt"], "3.6.11") == ["show-task", "7", "--no-prompt"]
