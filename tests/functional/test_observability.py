"""COS on real LXD: a real Prometheus scrapes every member through what the charm published, the
shipped dashboard and alert rules use only metrics that scrape returned, and the debug action
writes a redacted bundle."""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from observability import ALERT_RULES_DIR, DASHBOARDS_DIR
from tests.harness.cluster import FormedCluster, form

pytestmark = pytest.mark.functional

PER_MEMBER = 'count by (lxd_member) ({__name__=~"lxd_.+"})'  # lxd_* series of each member
SCRAPE_SECONDS = 45  # the longest wait for every target to answer
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 never via a proxy
# identifiers in PromQL that are not metric names
_PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless"}
_PROMQL_FUNCTIONS = {"sum", "count", "rate", "vector", "avg", "max", "min", "irate", "increase", "humanizePercentage"}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers outside {...} and [...] that are not
    PromQL keywords, functions, or label names in by(...)."""
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\b(?:by|without)\s*\([^)]*\)", " ", expr)
    words = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", bare))
    return words - _PROMQL_WORDS - _PROMQL_FUNCTIONS


def shipped_expressions() -> dict[str, str]:
    """Every expression of the shipped dashboards and alert rules, named by where it is."""
    exprs = {}
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                exprs[f"{path.name}: {panel['title']} {target['refId']}"] = target["expr"]
    for path in sorted(ALERT_RULES_DIR.glob("*.rule")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                exprs[f"{path.name}: {rule['alert']}"] = rule["expr"]
    return exprs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(base: str, path: str, **params: str) -> Any:
    url = f"{base}/api/v1/{path}" + ("?" + urllib.parse.urlencode(params) if params else "")
    with _OPENER.open(url, timeout=10) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]


def prometheus_config(relation: dict[str, str], key: str, work: Path) -> dict[str, Any]:
    """What a prometheus_scrape consumer makes of the relation data (as prometheus-k8s does:
    PEM contents written to files), with the key read from the secret the relation names."""
    jobs = json.loads(relation["scrape_jobs"])
    for job in jobs:
        tls = job["tls_config"]
        (work / "ca.crt").write_text(tls["ca_file"])
        (work / "client.crt").write_text(relation["tls_client_certificate"])
        (work / "client.key").write_text(key)
        (work / "client.key").chmod(0o600)
        tls.update(ca_file=str(work / "ca.crt"), cert_file=str(work / "client.crt"), key_file=str(work / "client.key"))
        job.update(scrape_interval="2s", scrape_timeout="2s")
    (work / "rules.yaml").write_text(yaml.safe_dump(json.loads(relation["alert_rules"])))
    return {"global": {"evaluation_interval": "2s"}, "rule_files": [str(work / "rules.yaml")], "scrape_configs": jobs}


def launch_everywhere(cluster: FormedCluster, n: int) -> None:
    cluster.lab.import_image(cluster.member(0))
    for uid in range(n):
        cluster.lxc(0, "launch", "busybox", f"c{uid}", "--target", f"lxd-cluster-{uid}")


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus package (scripts/setup.sh)")
def test_a_real_prometheus_scrapes_every_member_and_the_shipped_queries_use_only_what_it_returned(lab, tmp_path):
    cluster = form(lab, 3, driver="dir")
    sim = cluster.sim
    rid = sim.relate("metrics-endpoint", "prometheus")
    sim.settle()
    launch_everywhere(cluster, 3)
    relation = sim.provided[rid]
    assert "key_file" not in json.loads(relation["scrape_jobs"])[0]["tls_config"]  # the key is not in the databag
    secret = sim.app_secrets[relation["tls_client_key_secret"]]
    assert "PRIVATE KEY" not in json.dumps(relation)
    config = prometheus_config(relation, secret.latest_content["key"], tmp_path)
    targets = [t for c in config["scrape_configs"][0]["static_configs"] for t in c["targets"]]
    assert targets == [f"{cluster.member(u).address}:8444" for u in range(3)]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    check = subprocess.run(["promtool", "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline, up = time.monotonic() + SCRAPE_SECONDS, []
        while time.monotonic() < deadline:
            try:
                active = api(base, "targets")["activeTargets"]
                up = [t for t in active if t["health"] == "up"]
                if len(up) == 3 and len(api(base, "query", query=PER_MEMBER)["result"]) == 3:
                    break
            except OSError:
                pass
            time.sleep(1)
        assert len(up) == 3, [(t["scrapeUrl"], t["lastError"]) for t in active]
        per_member = api(base, "query", query=PER_MEMBER)["result"]
        assert sorted(r["metric"]["lxd_member"] for r in per_member) == [f"lxd-cluster-{u}" for u in range(3)]
        scraped = set(api(base, "label/__name__/values"))
        lxd_names = {n for n in scraped if n.startswith("lxd_")}
        assert "lxd_cpu_seconds_total" in lxd_names and "lxd_memory_RSS_bytes" in lxd_names

        exprs = shipped_expressions()
        assert len(exprs) >= 15
        for where, expr in exprs.items():
            unknown = metric_names(expr) - scraped
            assert not unknown, f"{where} uses metrics the scrape did not return: {unknown}"
            api(base, "query", query=expr)  # and real Prometheus evaluates it
            for name in metric_names(expr):
                assert api(base, "query", query=f"count({name})")["result"], f"{where}: no series of {name}"
        rules = api(base, "rules")["groups"]
        assert {r["name"] for g in rules for r in g["rules"]} >= {"LXDMemberDown", "LXDFewerThanThreeMembersOnline"}
        assert all(r["health"] == "ok" for g in rules for r in g["rules"]), rules
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_the_debug_action_writes_a_redacted_bundle_from_real_lxd(lab, tmp_path):
    cluster = form(lab, 3, driver="dir")
    sim = cluster.sim
    sim.relate("metrics-endpoint", "prometheus")  # a metrics key in a secret the bundle must not show
    sim.settle()
    outcome = sim.run_action(1, "debug", directory=str(tmp_path), **{"log-lines": 50})
    assert outcome.ok, outcome.failure
    assert outcome.results["members"] == ", ".join(f"lxd-cluster-{u} (Online)" for u in range(3))
    path = Path(outcome.results["path"])
    assert path.parent == tmp_path and path.stat().st_mode & 0o077 == 0
    with tarfile.open(path) as tar:
        files = {Path(m.name).name: tar.extractfile(m).read().decode() for m in tar.getmembers()}
    assert set(files) >= {"cluster-members.json", "warnings.json", "storage-pools.json", "lxd.log", "charm.json"}
    members = json.loads(files["cluster-members.json"])
    assert [m["server_name"] for m in members] == [f"lxd-cluster-{u}" for u in range(3)]
    assert json.loads(files["storage-pools.json"])[0]["resources"]["space"]["total"] > 0
    assert "level=" in files["lxd.log"] and len(files["lxd.log"].splitlines()) <= 50
    view = json.loads(files["charm.json"])
    assert view["relation"]["app-data"]["cluster-address"] == f"{cluster.member(0).address}:8443"
    bundle = "\n".join(files.values())
    assert sim.secret_values, "the cluster made no secrets: the redaction check would prove nothing"
    leaked = [v for v in sim.secret_values if len(v) >= 6 and v in bundle]
    assert not leaked and "PRIVATE KEY-----" not in bundle
