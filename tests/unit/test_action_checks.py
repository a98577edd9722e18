"""The actions' parameter checks on their own: each bad value is refused with the fix."""

from __future__ import annotations

import pytest

from action_checks import ActionError, check_removal, parse_launch


@pytest.mark.parametrize(
    "params, words",
    [
        ({"name": "9lives", "image": "busybox"}, "not a valid instance name"),
        ({"name": "ends-", "image": "busybox"}, "not a valid instance name"),
        ({"name": "a" * 64, "image": "busybox"}, "not a valid instance name"),
        ({"name": "has_underscore", "image": "busybox"}, "not a valid instance name"),
        ({"name": "ok", "image": ""}, "image is required"),
        ({"name": "ok", "image": "nowhere:jammy"}, "unknown image remote"),
        ({"name": "ok", "image": "busybox", "profiles": "default"}, "profiles"),
        ({"name": "ok", "image": "busybox", "config": {"limits.cpu": 2}}, "config"),
    ],
)
def test_bad_launch_parameters_are_refused(params, words):
    with pytest.raises(ActionError, match=words):
        parse_launch(params)


def test_launch_sources_alias_fingerprint_and_remote():
    assert parse_launch({"name": "a", "image": "busybox"}).source == {"type": "image", "alias": "busybox"}
    fp = "a1b2c3d4e5f6"
    assert parse_launch({"name": "a", "image": fp}).source == {"type": "image", "fingerprint": fp}
    remote = parse_launch({"name": "a", "image": "ubuntu:24.04"})
    assert remote.remote and remote.source["alias"] == "24.04" and remote.source["protocol"] == "simplestreams"


def test_removal_rules():
    members = ["m0", "m1", "m2", "m3"]
    check_removal("m3", members, [], {})
    with pytest.raises(ActionError, match="no cluster member named 'm9'"):
        check_removal("m9", members, [], {})
    with pytest.raises(ActionError, match="would leave 2"):
        check_removal("m2", members[:3], [], {})
    check_removal("m2", members[:3], [], {"allow-below-minimum": True})
    with pytest.raises(ActionError, match="still has instances: a, b"):
        check_removal("m3", members, ["b", "a"], {})
    check_removal("m3", members, ["a"], {"evacuate": True})
