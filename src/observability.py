"""The COS side of the charm: LXD's metrics for Prometheus (`metrics-endpoint`, interface
prometheus_scrape), the shipped alert rules and the Grafana dashboard (`grafana-dashboard`).

Every member serves LXD's metrics on its cluster binding address at `metrics-port`. The leader
keeps one metrics client certificate for the application: certificate and key in a Juju secret
(label metrics-client), the certificate trusted by LXD as type `metrics` (it reads /1.0/metrics
and nothing else). It publishes one scrape job with every member as a static target, https,
verified against the cluster certificate. The key stays in the secret, granted to the scraper's
relation; only with `metrics-key-in-relation-data=true` does it go into the job's tls_config,
which is the one place the stock prometheus_scrape consumers read a client key from.
Juju 2.9 has no secrets: the leader keeps the certificate and key in a 0600 file on its machine,
and a scraper gets the key only with `metrics-key-in-relation-data=true` (its one reader is another
application, with no key of ours to seal to); without that consent the job has no client
certificate and status says so.
Logs: where LXD has the `loki` API extension, the leader points LXD's own Loki client
(loki.api.url, cluster-wide) at the Loki of the `logging` relation (interface loki_push_api).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import ops

from config import CharmConfig
from juju_features import has_secrets
from metrics import metrics_address, scrape_job, serve_metrics, trust_metrics_certificate, untrust_metrics_certificate
from models import ServerInfo
from unit_key import write_private
from workload import LXD, LXDError

logger = logging.getLogger(__name__)

METRICS_RELATION = "metrics-endpoint"
DASHBOARD_RELATION = "grafana-dashboard"
LOGGING_RELATION = "logging"
LOKI_PUSH_PATH = "/loki/api/v1/push"
SECRET_LABEL = "metrics-client"
KEY_SECRET_FIELD = "tls_client_key_secret"  # relation data: id of the secret holding the key
CERT_FIELD = "tls_client_certificate"  # relation data: the (public) client certificate
CERTIFICATE_FILE = ".lxd-cluster-metrics.json"  # Juju 2.9: the leader's metrics certificate and key (0600)
NO_KEY_ON_29 = (
    "metrics-endpoint: this Juju has no secrets to hand Prometheus the metrics key: "
    "set metrics-key-in-relation-data=true to put it in the relation data"
)
CHARM_SRC = Path(__file__).resolve().parent
ALERT_RULES_DIR = CHARM_SRC / "prometheus_alert_rules"
DASHBOARDS_DIR = CHARM_SRC / "grafana_dashboards"


def alert_rules(topology: Any) -> dict[str, Any]:
    """The shipped rules as prometheus_scrape's `alert_rules` (cosl adds the topology labels)."""
    from cosl import AlertRules

    rules = AlertRules(query_type="promql", topology=topology)
    rules.add_path(str(ALERT_RULES_DIR), recursive=True)
    return rules.as_dict()


def loki_url(relations: list[ops.Relation]) -> str:
    """The first Loki push endpoint a `logging` provider unit publishes, as LXD wants it (no path)."""
    for relation in relations:
        for unit in sorted(relation.units, key=lambda u: u.name):
            try:
                url = json.loads(relation.data[unit].get("endpoint", "{}")).get("url", "")
            except (ValueError, AttributeError):
                continue
            if url:
                return url.removesuffix(LOKI_PUSH_PATH)
    return ""


def dashboard_templates(charm_name: str, topology: dict[str, str]) -> dict[str, Any]:
    """The shipped dashboards as grafana_dashboard's `templates` (LZMA+base64 content)."""
    from cosl import LZMABase64

    templates = {}
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        content = path.read_text()
        json.loads(content)  # a broken file fails here, not in Grafana
        templates[f"file:{path.name}"] = {
            "charm": charm_name,
            "content": LZMABase64.compress(content),
            "juju_topology": topology,
            "inject_dropdowns": True,
            "dashboard_alt_uid": hashlib.sha256(f"{charm_name}:{path.name}".encode()).hexdigest()[:16],
        }
    return templates


class Observability:
    """What a member does for COS on every reconcile (after it is a cluster member)."""

    def __init__(self, charm: ops.CharmBase, lxd: LXD):
        self.charm, self.lxd = charm, lxd
        self.model, self.app, self.unit = charm.model, charm.app, charm.unit
        self.logging_problem = ""  # why LXD does not send its logs to the related Loki ("" when it does)
        self.metrics_problem = ""  # why Prometheus cannot authenticate ("" when it can)

    def as_member(self, config: CharmConfig, info: ServerInfo, https_address: str, peer_news: bool = False) -> None:
        """Serve metrics here; the leader also trusts the client certificate and publishes. In a peer's
        hook (its databag, its secret) a leader nobody scrapes does not look for a certificate to untrust:
        the metrics relation's own hooks, leader-elected and update-status do."""
        serve_metrics(self.lxd, metrics_address(https_address, config.metrics_port))
        if not self.unit.is_leader():
            return
        self.publish_dashboards()
        self._send_logs(info)
        scrapers = self.model.relations[METRICS_RELATION]
        name = f"juju-{self.app.name}-metrics"
        if not scrapers:  # nobody scrapes: LXD trusts the metrics certificate no longer
            if not peer_news:
                untrust_metrics_certificate(self.lxd, name)
            return
        from cosl import JujuTopology  # imported only when needed: it brings pydantic

        topology = JujuTopology.from_charm(self.charm)
        secret, content = None, {}
        if has_secrets(self.model):
            secret = self._client_secret()
            content = secret.get_content(refresh=True)
        elif config.metrics_key_in_relation_data:
            content = self._client_file()
        else:
            self.metrics_problem = NO_KEY_ON_29
        if content:
            trust_metrics_certificate(self.lxd, name, content["certificate"])
        targets = {
            m.server_name: metrics_address(m.url.removeprefix("https://"), config.metrics_port)
            for m in self.lxd.members()
        }
        for relation in scrapers:
            self._publish_scrape(relation, secret, content, targets, info, config, topology)

    def publish_dashboards(self) -> None:
        """The leader publishes the shipped dashboards on every grafana-dashboard relation."""
        relations = self.model.relations[DASHBOARD_RELATION]
        if not self.unit.is_leader() or not relations:
            return
        from cosl import JujuTopology

        topology = JujuTopology.from_charm(self.charm)
        for relation in relations:
            self._publish_dashboards(relation, topology)

    def _send_logs(self, info: ServerInfo) -> None:
        url = loki_url(self.model.relations[LOGGING_RELATION])
        if not info.supports("loki"):
            if url:
                logger.warning("LXD %s has no loki support (API extension loki): logging is not sent", info.version)
            return
        try:
            self.lxd.update_config({"loki.api.url": url})  # empty: LXD stops sending
        except LXDError as e:
            # 5.21+ asks <url>/ready before it takes the key, and keeps the old value if Loki does not
            # answer (lxd-5.21.7 lxd/loki/loki.go:162-186, api_1.0.go:851-854; lxd-6.9 loki.go:174-196):
            # logging is not what the cluster serves, so nothing else waits for it
            self.logging_problem = f"logs not sent to Loki at {url}: {e}"
            logger.warning("LXD does not take loki.api.url=%s: %s", url, e)

    def _client_secret(self) -> ops.Secret:
        try:
            return self.model.get_secret(label=SECRET_LABEL)
        except ops.SecretNotFoundError:
            pass
        from metrics import generate_certificate

        certificate, key = generate_certificate(f"juju-{self.app.name}-metrics")
        logger.info("created the metrics client certificate (secret %s)", SECRET_LABEL)
        return self.app.add_secret(
            {"certificate": certificate, "key": key},
            label=SECRET_LABEL,
            description="client certificate and key with which Prometheus reads LXD's metrics",
        )

    def _client_file(self) -> dict[str, str]:
        """Juju 2.9: the leader's certificate and key from a 0600 file on its machine, made once."""
        path = self.charm.charm_dir / CERTIFICATE_FILE
        with contextlib.suppress(OSError, ValueError):
            content = json.loads(path.read_text())
            if content.get("certificate") and content.get("key"):
                return content
        from metrics import generate_certificate

        certificate, key = generate_certificate(f"juju-{self.app.name}-metrics")
        write_private(path, json.dumps({"certificate": certificate, "key": key}).encode())
        logger.info("created the metrics client certificate (%s)", path)
        return {"certificate": certificate, "key": key}

    def _publish_scrape(
        self,
        relation: ops.Relation,
        secret: ops.Secret | None,
        content: dict[str, str],
        targets: dict[str, str],
        info: ServerInfo,
        config: CharmConfig,
        topology: Any,
    ) -> None:
        data = relation.data[self.app]
        if config.metrics_key_in_relation_data:
            job = scrape_job(targets, info.certificate, content["certificate"], content["key"])
            data.pop(CERT_FIELD, None)
            data.pop(KEY_SECRET_FIELD, None)
        elif secret is None:  # Juju 2.9 without consent: no way to hand over the key (status says so)
            job = scrape_job(targets, info.certificate)
            data.pop(CERT_FIELD, None)
            data.pop(KEY_SECRET_FIELD, None)
        else:
            job = scrape_job(targets, info.certificate)
            secret.grant(relation)
            data[CERT_FIELD] = content["certificate"]
            data[KEY_SECRET_FIELD] = secret.id or secret.get_info().id or ""
        data["scrape_metadata"] = json.dumps(topology.as_dict())
        data["scrape_jobs"] = json.dumps([job])
        data["alert_rules"] = json.dumps(alert_rules(topology))

    def _publish_dashboards(self, relation: ops.Relation, topology: Any) -> None:
        templates = dashboard_templates(self.charm.meta.name, topology.as_dict())
        old = json.loads(relation.data[self.app].get("dashboards", "{}"))
        if old.get("templates") == templates:
            return  # an unchanged uuid tells Grafana nothing changed
        digest = hashlib.sha256(json.dumps(templates, sort_keys=True).encode()).hexdigest()
        relation.data[self.app]["dashboards"] = json.dumps({"templates": templates, "uuid": digest})
