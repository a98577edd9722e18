"""Issue 25 part 1 on real LXD: the model's proxy, set by the charm as core.proxy_https, carries a
lab member's image copy from another lab daemon (a remote) through an HTTP CONNECT proxy the test
runs in the lab; without proxy settings nothing goes through it.

The member's daemon pulls the image itself (`lxc image copy src:busybox local:` asks the destination
to pull, lxd-5.0.2 lxd/images.go imgPostRemoteInfo -> daemon_images.go:83 ImageDownload, whose
client takes the daemon's proxy function, shared/proxy.go ProxyFromConfig from core.proxy_*)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.cluster import charm_sim
from tests.harness.lab import Lab, Member

pytestmark = pytest.mark.functional

PASSWORD = "lab-proxy-secret-42"  # noqa: S105 - a test value
PROXY_PORT = 3128


def start_proxy(lab: Lab, host: Member, log: Path) -> subprocess.Popen:
    """The CONNECT proxy inside `host`'s namespace, bound on its lab address."""
    script = Path(__file__).resolve().parents[1] / "harness" / "connect_proxy.py"
    log.touch()
    proc = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{host.netns}", sys.executable, str(script)]
        + [host.address, str(PROXY_PORT), lab.net, str(log)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    return proc


def proxy_lines(log: Path) -> list[str]:
    return log.read_text().splitlines()


def copy_image(lab: Lab, member: Member, alias: str) -> None:
    lab.lxc(member, "image", "copy", "src:busybox", "local:", "--alias", alias)
    assert alias in lab.lxc(member, "image", "list", "--format", "csv", "-c", "l").stdout


def server_config(lab: Lab, member: Member, key: str) -> str:
    return lab.lxc(member, "config", "get", key).stdout.strip()


def test_an_image_copy_from_a_remote_lab_daemon_goes_through_the_models_proxy(lab, tmp_path):
    lab.up(2)
    member, remote = lab.members
    # the remote: a standalone daemon serving a public busybox image over HTTPS on its lab address
    lab.lxc(remote, "config", "set", "core.https_address", f"{remote.address}:8443")
    lab.lxc(remote, "image", "import", str(lab.image_tarball()), "--alias", "busybox", "--public")
    lab.lxc(member, "remote", "add", "src", f"https://{remote.address}:8443", "--public", "--accept-certificate")
    log = tmp_path / "proxy.log"
    proxy = start_proxy(lab, remote, log)
    try:
        sim = charm_sim(lab, {"storage-driver": "dir"})
        sim.deploy(1)
        sim.settle()
        assert server_config(lab, member, "core.proxy_https") == ""
        copy_image(lab, member, "direct")
        assert proxy_lines(log) == []  # no proxy settings: nothing went through it

        url = f"http://labuser:{PASSWORD}@{remote.address}:{PROXY_PORT}"
        sim.set_model_proxy(juju_https_proxy=url, juju_http_proxy=url, juju_no_proxy="localhost")
        sim.update_status()
        sim.settle()
        assert server_config(lab, member, "core.proxy_https") == url
        assert server_config(lab, member, "core.proxy_ignore_hosts") == "localhost"
        lab.lxc(member, "image", "delete", "direct")
        copy_image(lab, member, "proxied")
        through = proxy_lines(log)  # the daemon opens a few connections: alias, image info, the download
        assert through and set(through) == {f"CONNECT {remote.address}:8443 auth=yes"}, through
        shown = [status.message for status in sim.statuses().values()]
        assert shown and not [text for text in shown if PASSWORD in text]
        assert sim.statuses()[0].name == "active", shown

        sim.set_model_proxy(juju_https_proxy="", juju_http_proxy="", juju_no_proxy="")
        sim.update_status()
        sim.settle()
        assert server_config(lab, member, "core.proxy_https") == ""
        assert server_config(lab, member, "core.proxy_http") == ""
        lab.lxc(member, "image", "delete", "proxied")
        copy_image(lab, member, "direct-again")
        assert proxy_lines(log) == through  # nothing new
    finally:
        proxy.terminate()
        proxy.wait(10)
