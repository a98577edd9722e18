"""workload.LXD against a stand-in daemon (lxd_standin.py): the requests it makes for a call."""

from __future__ import annotations

import types
from typing import Any

from lxd_standin import StandIn, serve, start

import workload


def test_an_image_reference_is_one_quoted_path_segment(tmp_path, cluster_pem):
    """An image reference is one quoted path segment: ubuntu/24.04 (as images: copies bring) and, from
    an operator's typo, characters a raw URL cannot carry (LXD answers `not found`, not a broken request)."""
    requests: list[str] = []
    server = serve(tmp_path, cluster_pem, requests)
    try:
        assert not workload.LXD(str(tmp_path)).image_exists("ubuntu/24.04")
        assert not workload.LXD(str(tmp_path)).image_exists("no such image?")
    finally:
        server.shutdown()
        server.server_close()
    assert requests == [
        "GET /1.0/images/aliases/ubuntu%2F24.04",
        "GET /1.0/images/ubuntu%2F24.04",
        "GET /1.0/images/aliases/no%20such%20image%3F",
        "GET /1.0/images/no%20such%20image%3F",
    ]


def test_instances_of_every_project_are_listed_and_moved_within_their_project(tmp_path, cluster_pem):
    """The list asks LXD for all projects and keeps each instance's project; a move, a start and a
    state read of an instance name its project (`web` is in two projects here)."""
    daemon = StandIn(cluster_pem)
    server = start(tmp_path, daemon)
    requests = daemon.requests
    try:
        lxd = workload.LXD(str(tmp_path))
        listed = lxd.instances()
        runner = lxd.instance("web", "runner")
        lxd.migrate("web", "lxd-cluster-0", "runner")
        lxd.set_instance_state("web", "start", "runner")
        held = lxd.inventory().instances
    finally:
        server.shutdown()
        server.server_close()
    assert [(i.project, i.name, i.location) for i in listed] == [
        ("default", "web", "lxd-cluster-1"),
        ("runner", "web", "lxd-cluster-2"),
    ]
    assert (runner.project, runner.location, runner.status) == ("runner", "lxd-cluster-2", "Running")
    assert held == ("web", "runner/web")  # a joiner's LXD holding either would lose it
    assert requests[0] == "GET /1.0/instances?recursion=1&all-projects=true"
    assert "GET /1.0/instances/web?project=runner" in requests
    assert "GET /1.0/instances/web/state?project=runner" in requests
    writes = [r for r in requests if r.split(" ", 1)[0] in ("POST", "PUT")]
    assert writes == [
        "POST /1.0/instances/web?target=lxd-cluster-0&project=runner",
        "PUT /1.0/instances/web/state?project=runner",
    ]
    assert [body for _, body in daemon.bodies] == [
        {"name": "web", "migration": True},
        {"action": "start", "timeout": 30, "force": False},
    ]


def test_an_operation_url_with_its_project_is_waited_for_at_the_wait_endpoint():
    """LXD 5.0.2 answers an instance creation with `/1.0/operations/ID?project=default` (seen in the lab):
    the query belongs to the wait endpoint, not to the ID, or the wait is a plain GET answered at once."""
    asked: list[tuple[str, dict]] = []

    class Node:
        def __init__(self, path: str):
            self.path = path

        def __getitem__(self, part: str) -> Node:
            return Node(f"{self.path}/{part}")

        def __getattr__(self, part: str) -> Node:
            return Node(f"{self.path}/{part}")

        def get(self, params: dict) -> Any:
            asked.append((self.path, params))
            return types.SimpleNamespace(json=lambda: {"metadata": {"status": "Success"}})

    lxd = workload.LXD("/nonexistent")
    lxd._client = types.SimpleNamespace(api=Node(""))
    lxd._wait("/1.0/operations/4e852351-af2a?project=default")
    assert asked == [("/operations/4e852351-af2a/wait", {"project": "default", "timeout": 30})]
