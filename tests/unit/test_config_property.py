"""Property: whatever string any option holds, no hook raises; the unit works or is Blocked naming
the option (and the fix), and a long value is never echoed whole (issue 13, item 4)."""

from __future__ import annotations

import pytest
from config_cases import OPTIONS
from fake_lxd import FakeLXD
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from states import ctx, make_state

import charm
import devices

STRING_OPTIONS = sorted(k for k, v in OPTIONS.items() if v["type"] == "string")
# paths deserve more than random text: the shapes that broke os.stat or the mounted check
PATHS = st.one_of(
    st.text(),
    st.builds(lambda s: "/dev/" + s, st.text()),
    st.builds(lambda n: "/dev/" + "x" * n, st.integers(200, 5000)),
    st.sampled_from(["/etc/hostname/vdb", "/dev/null/x", "/dev/loop41", "/dev/\x00", "/proc/self/fd/0"]),
)
VALUES = st.one_of(st.text(), st.text(min_size=300, max_size=5000), st.binary().map(lambda b: b.decode("latin-1")))


@pytest.mark.parametrize("option", STRING_OPTIONS)
@settings(
    database=None,  # no example store in the checkout
    max_examples=25,
    deadline=2000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_value_of_any_string_option_makes_a_hook_raise(option, data, cluster_pem, monkeypatch):
    strategy = PATHS if option == "storage-device" else VALUES
    value = data.draw(strategy, label=option)
    fake = FakeLXD(cluster_pem)
    fake.inspect_device = lambda path: fake.devices.get(path) or devices.inspect_device(path)  # the real os.stat
    monkeypatch.setattr(charm, "LXD", lambda: fake)
    config = {"storage-driver": "btrfs", option: value}
    out = ctx().run(ctx().on.config_changed(), make_state(leader=True, config=config))  # raises on a crash
    status = out.unit_status
    assert status.name in ("active", "blocked", "waiting"), status
    if status.name == "blocked":
        words = status.message
        assert option in words or "storage device" in words or "bridge" in words, words
        assert len(words) < 400, words
    if len(value) > 300:
        assert value not in status.message
