"""The COS relations through the charm: metrics served on every member, the scrape job, the key in
a Juju secret, alert rules and the dashboard."""

from __future__ import annotations

import dataclasses
import json

import ops
import pytest
from charms.lxd_cluster.v0.lxd_cluster import fingerprint_of as certificate_fingerprint
from cosl import LZMABase64
from fake_lxd import FakeLXD
from ops import testing
from states import REL, announced, ctx, make_state, published

import observability


@pytest.fixture
def lxd(lxd: FakeLXD) -> FakeLXD:
    """This unit is lxd-cluster-0 of a three-member cluster."""
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2")
    return lxd


def scraper(**kw) -> testing.Relation:
    return testing.Relation("metrics-endpoint", id=REL + 1, remote_app_name="prometheus", **kw)


def leader_state(cluster_pem: str, *relations: testing.Relation, config=None) -> testing.State:
    state = make_state(leader=True, app=published(cluster_pem), peers={1: announced(1), 2: announced(2)}, config=config)
    return dataclasses.replace(state, relations=[*state.relations, *relations])


def test_every_member_serves_its_metrics_on_its_own_port(lxd, cluster_pem):
    lxd.config.pop("core.metrics_address")
    ctx().run(ctx().on.config_changed(), leader_state(cluster_pem, config={"metrics-port": 9100}))
    assert lxd.config["core.metrics_address"] == "lxd-cluster-0:9100"


def test_a_non_leader_serves_metrics_but_publishes_nothing(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-1", "lxd-cluster-0")
    lxd.config.pop("core.metrics_address")
    relation = scraper()
    state = make_state(ip="10.0.0.2", app=published(cluster_pem))
    out = ctx(1).run(
        ctx(1).on.relation_joined(relation, remote_unit=0),
        dataclasses.replace(state, relations=[*state.relations, relation]),
    )
    assert lxd.config["core.metrics_address"] == "lxd-cluster-1:8444"
    assert out.get_relation(relation.id).local_app_data == {} and not others(out) and lxd.metrics_certs == {}


def test_the_leader_publishes_every_member_as_a_target_and_keeps_the_key_in_a_secret(lxd, cluster_pem):
    relation = scraper()
    out = ctx().run(ctx().on.relation_joined(relation, remote_unit=0), leader_state(cluster_pem, relation))
    data = out.get_relation(relation.id).local_app_data
    (job,) = json.loads(data["scrape_jobs"])
    assert job["scheme"] == "https" and job["metrics_path"] == "/1.0/metrics"
    assert [c["targets"] for c in job["static_configs"]] == [[f"lxd-cluster-{i}:8444"] for i in range(3)]
    assert job["tls_config"] == {"ca_file": cluster_pem}  # verified against the cluster certificate
    (secret,) = others(out)
    assert secret.label == "metrics-client" and secret.owner == "app"
    assert (
        data["tls_client_key_secret"] == secret.id
        and data["tls_client_certificate"] == secret.tracked_content["certificate"]
    )
    assert relation.id in secret.remote_grants  # the scraper may read the key
    assert "PRIVATE KEY" not in json.dumps(dict(data))
    assert json.loads(data["scrape_metadata"])["application"] == "lxd-cluster"
    trusted = list(lxd.metrics_certs.values())
    assert trusted == [
        {
            "name": "juju-lxd-cluster-metrics",
            "type": "metrics",
            "fingerprint": certificate_fingerprint(secret.tracked_content["certificate"]),
        }
    ]


def test_the_key_goes_into_the_job_only_with_consent(lxd, cluster_pem):
    relation = scraper()
    state = leader_state(cluster_pem, relation, config={"metrics-key-in-relation-data": True})
    out = ctx().run(ctx().on.relation_changed(relation, remote_unit=0), state)
    data = out.get_relation(relation.id).local_app_data
    tls = json.loads(data["scrape_jobs"])[0]["tls_config"]
    (secret,) = others(out)
    assert (
        tls["key_file"] == secret.tracked_content["key"] and tls["cert_file"] == secret.tracked_content["certificate"]
    )
    assert "tls_client_key_secret" not in data


def test_the_certificate_is_made_once_and_untrusted_when_no_scraper_is_left(lxd, cluster_pem):
    relation = scraper()
    out = ctx().run(ctx().on.relation_joined(relation, remote_unit=0), leader_state(cluster_pem, relation))
    (secret,) = others(out)
    again = ctx().run(ctx().on.update_status(), dataclasses.replace(out))
    assert [s.id for s in others(again)] == [secret.id] and len(lxd.metrics_certs) == 1
    gone = dataclasses.replace(again, relations=[r for r in again.relations if r.id != relation.id])
    ctx().run(ctx().on.update_status(), gone)
    assert lxd.metrics_certs == {}


def test_the_shipped_alert_rules_are_published_with_the_topology(lxd, cluster_pem):
    relation = scraper()
    out = ctx().run(ctx().on.relation_joined(relation, remote_unit=0), leader_state(cluster_pem, relation))
    rules = json.loads(out.get_relation(relation.id).local_app_data["alert_rules"])
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    assert set(alerts) == {"LXDMemberDown", "LXDFewerThanThreeMembersOnline", "LXDInstanceDiskAlmostFull"}
    assert alerts["LXDMemberDown"]["labels"]["juju_application"] == "lxd-cluster"


def test_the_dashboard_is_published_and_unchanged_dashboards_keep_their_uuid(lxd, cluster_pem):
    relation = testing.Relation("grafana-dashboard", id=REL + 2, remote_app_name="grafana")
    out = ctx().run(ctx().on.relation_joined(relation, remote_unit=0), leader_state(cluster_pem, relation))
    dashboards = json.loads(out.get_relation(relation.id).local_app_data["dashboards"])
    template = dashboards["templates"]["file:lxd-cluster.json"]
    assert json.loads(LZMABase64.decompress(template["content"]))["title"] == "LXD cluster"
    assert template["charm"] == "lxd-cluster" and template["inject_dropdowns"] is True
    again = ctx().run(ctx().on.update_status(), out)
    assert json.loads(again.get_relation(relation.id).local_app_data["dashboards"])["uuid"] == dashboards["uuid"]


@pytest.mark.parametrize("config", [{"metrics-port": 0}, {"metrics-port": 8443}, {"metrics-port": True}])
def test_a_bad_metrics_port_blocks_and_changes_nothing(lxd, cluster_pem, config):
    lxd.config.pop("core.metrics_address")
    out = ctx().run(ctx().on.config_changed(), leader_state(cluster_pem, config=config))
    assert out.unit_status.name == "blocked" and "metrics-port" in out.unit_status.message
    assert "core.metrics_address" not in lxd.config


def test_every_shipped_file_is_read_from_the_charm_directory():
    """The packed charm reads them beside src/observability.py (.jujuignore must keep them)."""
    assert sorted(p.name for p in observability.ALERT_RULES_DIR.glob("*.rule")) == ["lxd.rule"]
    assert sorted(p.name for p in observability.DASHBOARDS_DIR.glob("*.json")) == ["lxd-cluster.json"]


def logging_relation(url: str) -> testing.Relation:
    return testing.Relation(
        "logging", id=REL + 3, remote_app_name="loki", remote_units_data={0: {"endpoint": json.dumps({"url": url})}}
    )


def test_lxd_sends_its_logs_to_the_related_loki_where_it_can(lxd, cluster_pem):
    lxd.extensions.add("loki")
    relation = logging_relation("http://10.1.2.3:3100/loki/api/v1/push")
    out = ctx().run(ctx().on.relation_changed(relation, remote_unit=0), leader_state(cluster_pem, relation))
    assert lxd.config["loki.api.url"] == "http://10.1.2.3:3100"
    gone = dataclasses.replace(out, relations=[r for r in out.relations if r.id != relation.id])
    ctx().run(ctx().on.update_status(), gone)
    assert "loki.api.url" not in lxd.config or lxd.config["loki.api.url"] == ""


def test_an_lxd_without_loki_support_is_left_alone(lxd, cluster_pem):
    relation = logging_relation("http://10.1.2.3:3100/loki/api/v1/push")
    out = ctx().run(ctx().on.relation_changed(relation, remote_unit=0), leader_state(cluster_pem, relation))
    assert "loki.api.url" not in lxd.config and out.unit_status.name == "active"


def test_without_a_scraper_the_leader_reads_no_secret(lxd, cluster_pem, monkeypatch):
    """secret-get of a label that does not exist is refused by Juju: not asked on every hook."""

    real_get_secret = ops.Model.get_secret

    def no_secret_get(self, *args, **kwargs):
        if kwargs.get("id"):  # by id, named in a databag (each unit's membership secret): it exists
            return real_get_secret(self, *args, **kwargs)
        raise AssertionError("secret-get without a scraper")

    monkeypatch.setattr(ops.Model, "get_secret", no_secret_get)
    out = ctx().run(ctx().on.update_status(), leader_state(cluster_pem))
    assert not others(out) and lxd.metrics_certs == {} and out.unit_status.name == "active"


def others(out: testing.State) -> list[testing.Secret]:
    """The secrets beside the unit's membership secret (membership.py)."""
    return [s for s in out.secrets if s.label != "membership"]
