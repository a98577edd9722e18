"""Issue 25 part 2: production tuning through charmlibs-sysctl (the real library, over the fake host's
/proc/sys, sysctl.d and a procps-like `sysctl`), LXD's limits file, and the option that turns it off."""

from __future__ import annotations

import dataclasses

from ops import testing
from states import ctx, make_state

from tuning import SYSCTLS

OWN_FILE = "90-juju-lxd-cluster"


def _kernel(host) -> dict[str, int]:
    return {key: int(host.proc_sys.joinpath(*key.split(".")).read_text()) for key in SYSCTLS}


def _set_kernel(host, key: str, value: int) -> None:
    host.proc_sys.joinpath(*key.split(".")).write_text(f"{value}\n")


def _install(config: dict | None = None) -> testing.State:
    return ctx().run(ctx().on.install(), make_state(leader=True, planned_units=1, config=config or {}))


def test_every_low_value_is_raised_to_lxds_production_value_and_kept_across_reboots(lxd, host):
    _install()
    assert _kernel(host) == SYSCTLS
    own = (host.sysctl_d / OWN_FILE).read_text()
    assert all(f"{key}={value}\n" in own for key, value in SYSCTLS.items())  # sysctl.d: applied at boot
    merged = (host.sysctl_d / "95-juju-sysctl.conf").read_text()
    assert "vm.max_map_count=262144" in merged


def test_the_nofile_and_memlock_limits_are_written_for_every_user_and_root(lxd, host):
    _install()
    lines = {tuple(line.split()) for line in (host.limits_d / "60-juju-lxd-cluster.conf").read_text().splitlines()}
    for domain in ("*", "root"):
        for kind in ("soft", "hard"):
            assert (domain, kind, "nofile", "1048576") in lines
            assert (domain, kind, "memlock", "unlimited") in lines


def test_a_value_the_host_has_higher_is_never_lowered(lxd, host):
    _set_kernel(host, "vm.max_map_count", 1048576)
    _install()
    assert _kernel(host)["vm.max_map_count"] == 1048576
    assert "vm.max_map_count" not in (host.sysctl_d / OWN_FILE).read_text()


def test_the_next_hook_keeps_the_values_in_the_charms_file(lxd, host):
    out = _install()
    ctx().run(ctx().on.update_status(), out)  # everything is in force now: nothing is low
    own = (host.sysctl_d / OWN_FILE).read_text()
    assert all(f"{key}={value}\n" in own for key, value in SYSCTLS.items())


def test_a_settled_unit_runs_no_sysctl_and_rewrites_no_file(lxd, host):
    out = _install()
    own = host.sysctl_d / OWN_FILE
    before, calls = own.stat().st_mtime_ns, len(host.sysctl_calls)
    ctx().run(ctx().on.update_status(), out)
    assert len(host.sysctl_calls) == calls and own.stat().st_mtime_ns == before


def test_a_key_another_charm_set_is_kept_and_named_in_status(lxd, host):
    # another charm on the machine, through the same library: its file and the merged one
    (host.sysctl_d / "90-juju-elasticsearch").write_text("# elasticsearch\nvm.max_map_count=200000\n")
    (host.sysctl_d / "95-juju-sysctl.conf").write_text("# merged\nvm.max_map_count=200000\n")
    _set_kernel(host, "vm.max_map_count", 200000)
    out = _install()
    kernel = _kernel(host)
    assert kernel.pop("vm.max_map_count") == 200000  # not fought over
    assert kernel == {k: v for k, v in SYSCTLS.items() if k != "vm.max_map_count"}  # the rest raised
    assert isinstance(out.unit_status, testing.ActiveStatus)
    assert out.unit_status.message.endswith("; kept another charm's vm.max_map_count")
    merged = (host.sysctl_d / "95-juju-sysctl.conf").read_text()
    assert "vm.max_map_count=200000" in merged and "fs.aio-max-nr=524288" in merged


def test_production_tuning_false_removes_the_charms_files_and_changes_no_value(lxd, host):
    out = _install()
    raised = _kernel(host)
    ctx().run(ctx().on.config_changed(), dataclasses.replace(out, config={"production-tuning": False}))
    assert not (host.sysctl_d / OWN_FILE).exists()
    assert not (host.limits_d / "60-juju-lxd-cluster.conf").exists()
    assert "vm.max_map_count" not in (host.sysctl_d / "95-juju-sysctl.conf").read_text()
    assert _kernel(host) == raised  # in force until the next boot


def test_production_tuning_false_from_the_start_touches_nothing(lxd, host):
    before = _kernel(host)
    _install({"production-tuning": False})
    assert _kernel(host) == before
    assert list(host.sysctl_d.iterdir()) == [] and not host.limits_d.exists()


def test_a_key_the_kernel_refuses_blocks_naming_it_and_the_values_are_put_back(lxd, host):
    before = _kernel(host)
    path = host.proc_sys.joinpath(*"kernel.keys.maxkeys".split("."))
    path.with_name(path.name + ".denied").write_text("")  # a container without the right to set it
    out = _install()
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert "kernel.keys.maxkeys" in out.unit_status.message and "production-tuning=false" in out.unit_status.message
    assert _kernel(host) == before  # the library restores its snapshot
    assert lxd.preseeds == []  # stopped before LXD was touched
