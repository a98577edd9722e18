"""The actions, run on this unit's LXD: results are structured, refusals are ActionErrors."""

from __future__ import annotations

import collections
import json
from collections.abc import Callable
from dataclasses import replace

import ops
import yaml
from charms.lxd_cluster.v0.lxd_cluster import DataError, check_client_certificate

import debug_bundle
from access import AccessError, ensure_projects, secure_tokens, token_terms
from action_checks import ActionError, check_known_member, check_removal, parse_launch
from config import CharmConfig, ConfigError, load_config
from departure import move_off
from issuing import issue_credential
from juju_features import has_secrets, has_user_secrets
from models import PEER, ClusterInfo, Member, server_name_of
from preseed import REDACTED, JoinCredential, PoolSpec, join_preseed
from workload import LXD, LXDError

# LXD 6.9's refusal to evacuate a voter whose loss breaks quorum (lxd-6.9 lxd/api_cluster_member.go:1672)
QUORUM_REFUSAL = "Insufficient online voters to maintain quorum"


def format_table(rows: list[dict[str, str]]) -> str:
    """The primer's `lxc cluster list` table."""
    if not rows:
        return ""
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in keys}
    line = "+" + "+".join("-" * (widths[k] + 2) for k in keys) + "+"
    out = [line, "|" + "|".join(f" {k.upper():<{widths[k]}} " for k in keys) + "|", line]
    out += ["|" + "|".join(f" {str(r[k]):<{widths[k]}} " for k in keys) + "|" for r in rows]
    return "\n".join(out + [line])


class ClusterActions:
    """`juju run lxd-cluster/<unit> <action>`: one handler per action in actions.yaml."""

    def __init__(self, model: ops.Model, lxd: LXD):
        self.model, self.lxd = model, lxd
        self.unit, self.app = model.unit, model.app
        self.handlers: dict[str, Callable[[ops.ActionEvent], None]] = {
            "launch": self.launch,
            "remove-node": self.remove_node,
            "force-remove": self.force_remove,
            "cluster-list": self.cluster_list,
            "show-preseed": self.show_preseed,
            "add-trusted-client": self.add_trusted_client,
            "remove-trusted-client": self.remove_trusted_client,
            "evacuate": lambda event: self.member_state(event, "evacuate"),
            "restore": lambda event: self.member_state(event, "restore"),
            "debug": self.debug,
        }

    def _config(self) -> CharmConfig:
        try:
            return load_config(self.model.config, user_secrets=has_user_secrets(self.model))
        except ConfigError as e:
            raise ActionError(f"fix the configuration first: {e}") from None

    def _require_member(self, leader: bool = False) -> list[Member]:
        if leader and not self.unit.is_leader():
            raise ActionError("run this action on the leader: juju run lxd-cluster/leader ...")
        if not self.lxd.info().clustered:
            raise ActionError("this unit is not a cluster member yet: run the action on a member")
        return self.lxd.members()

    # -- instances ------------------------------------------------------------------------
    def launch(self, event: ops.ActionEvent) -> None:
        request = parse_launch(event.params)
        members = self._require_member()
        if request.target.startswith("@"):
            if not self.lxd.group_exists(request.target[1:]):
                raise ActionError(f"no cluster group named {request.target[1:]!r}")
        elif request.target:
            check_known_member(request.target, [m.server_name for m in members])
        if any((i.project, i.name) == ("default", request.name) for i in self.lxd.instances()):  # it launches there
            raise ActionError(f"an instance named {request.name} exists already: choose another name")
        if not request.remote and not self.lxd.image_exists(request.image):
            raise ActionError(
                f"no image {request.image!r} in the cluster's image store: import it "
                "(lxc image import) or name a remote image such as ubuntu:24.04"
            )
        event.log(f"launching {request.name} from {request.image} on {request.target or 'a member LXD picks'}")
        instance = self.lxd.launch(request.name, request.source, request.target, request.profiles, request.config)
        event.set_results(
            {
                "name": instance.name,
                "location": instance.location,
                "status": instance.status,
                "ipv4": ", ".join(instance.ipv4),
                "ipv6": ", ".join(instance.ipv6),
            }
        )

    # -- members --------------------------------------------------------------------------
    def remove_node(self, event: ops.ActionEvent) -> None:
        name = str(event.params.get("name", ""))
        members = self._require_member(leader=True)
        if name == server_name_of(self.unit.name):
            raise ActionError(
                f"{name} is the leader's own member: use juju remove-unit {self.unit.name}, "
                "which moves its instances and leaves the cluster"
            )
        names = [m.server_name for m in members]
        on_member = self.lxd.instances(location=name) if name in names else []  # of every project
        check_removal(name, names, [i.ref for i in on_member], event.params)
        before = sorted(i.ref for i in self.lxd.instances())
        moved = move_off(self.lxd, name, on_member, event.log, members=members) if on_member else {}
        event.log(f"removing {name} from the cluster")
        self.lxd.remove_member(name)
        self._record_removed(name)
        after = sorted(i.ref for i in self.lxd.instances())
        lost = sorted(set(before) - set(after))
        event.set_results(
            {
                "removed": name,
                "moved": ", ".join(f"{i}->{t}" for i, t in moved.items()) or "none",
                "instances-before": len(before),
                "instances-after": len(after),
                "lost": ", ".join(lost) or "none",
            }
        )

    def force_remove(self, event: ops.ActionEvent) -> None:
        name = str(event.params.get("name", ""))
        if event.params.get("confirm") is not True:
            raise ActionError(
                f"force-remove deletes {name or 'the member'} and its instances from the cluster "
                "database without asking it: run again with confirm=true"
            )
        members = self._require_member(leader=True)
        check_known_member(name, [m.server_name for m in members])
        row = next(m for m in members if m.server_name == name)
        if row.status == "Online":
            raise ActionError(f"{name} is online: use remove-node, which moves its instances first")
        lost = sorted(i.ref for i in self.lxd.instances(location=name))
        event.log(f"force-removing {name} ({row.status}: {row.message})")
        self.lxd.remove_member(name, force=True)
        self._record_removed(name)
        event.set_results(
            {
                "removed": name,
                "lost-instances": ", ".join(lost) or "none",
                "next-step": f"wipe LXD on the host of {name} (snap remove --purge lxd, or reinstall "
                "the machine) before it can join a cluster again",
            }
        )

    def _record_removed(self, name: str) -> None:
        """Remember a member removed by action, so its unit never tries to join again."""
        relation = self.model.get_relation(PEER)
        if relation is None:
            return
        cluster = ClusterInfo.load(relation.data[self.app])
        replace(cluster, removed=" ".join(sorted(set(cluster.removed.split()) | {name}))).dump(relation.data[self.app])

    def cluster_list(self, event: ops.ActionEvent) -> None:
        members = self._require_member()
        counts = collections.Counter(i.location for i in self.lxd.instances())  # of every project
        rows = [
            {
                "name": m.server_name,
                "url": m.url,
                "database": m.database_role,
                "state": m.status.upper(),
                "instances": str(counts[m.server_name]),
                "message": m.message,
            }
            for m in members
        ]
        event.set_results({"table": format_table(rows), "members": json.dumps(rows)})

    def show_preseed(self, event: ops.ActionEvent) -> None:
        reveal = event.params.get("reveal") is True
        server_name = str(event.params.get("server-name", "")).strip()
        address = str(event.params.get("address", "")).strip()
        source = str(event.params.get("storage-source", "")).strip()
        if not server_name or not address:
            raise ActionError("server-name and address are required: the new host's name and its IP")
        config = self._config()
        members = self._require_member(leader=reveal)
        if server_name in [m.server_name for m in members]:
            raise ActionError(f"{server_name} is a member already: choose the new host's name")
        relation = self.model.get_relation(PEER)
        cluster = ClusterInfo.load(relation.data[self.app]) if relation else ClusterInfo()
        if not cluster.formed:
            raise ActionError("the cluster is not published yet: wait for the leader")
        info = self.lxd.info()
        if reveal:
            secure_tokens(self.lxd, config, info)  # the configured lifetime applies to this token too
        credential = issue_credential(self.lxd, info, server_name) if reveal else JoinCredential(REDACTED)
        preseed = join_preseed(
            server_name=server_name,
            address=address,
            port=config.cluster_port,
            cluster_address=cluster.cluster_address,
            cluster_certificate=cluster.certificate,
            credential=credential,
            pool=PoolSpec(config.storage_driver, source=source, size="" if source else config.storage_size),
        )
        results = {"preseed": yaml.safe_dump(preseed, sort_keys=False)}
        if reveal:
            results.update(token_terms(credential.value, config, info, "join"))
        event.set_results(results)

    def member_state(self, event: ops.ActionEvent, action: str) -> None:
        name = str(event.params.get("name", ""))
        members = self._require_member()
        check_known_member(name, [m.server_name for m in members])
        # only LXD 6.9+ checks quorum before evacuating, and only it knows `force` (clustering_evacuation_force)
        force = event.params.get("force") is True and self.lxd.info().supports("clustering_evacuation_force")
        event.log(f"{action} {name}" + (" (force: LXD's quorum check skipped)" if force else ""))
        try:
            self.lxd.set_member_state(name, action, force=force)
        except LXDError as e:
            if QUORUM_REFUSAL in str(e):
                raise ActionError(
                    f"LXD refused: {e}: evacuating {name} would leave fewer online database voters than a "
                    "majority; bring the offline members back first, or run again with force=true (the "
                    "cluster's database may stop answering until they are back)"
                ) from None
            raise
        row = next(m for m in self.lxd.members() if m.server_name == name)
        instances = self.lxd.instances(location=name)
        event.set_results(
            {
                "name": name,
                "state": row.status.upper(),
                "instances": ", ".join(f"{i.ref} ({i.status})" for i in instances) or "none",
            }
        )

    # -- trusted clients outside Juju -----------------------------------------------------
    def add_trusted_client(self, event: ops.ActionEvent) -> None:
        """Least privilege: the client gets the projects named, or everything only with admin=true."""
        name = str(event.params.get("name", "")).strip()
        pem = str(event.params.get("certificate", "")).strip()
        projects = tuple(sorted(set(event.params.get("projects", []))))
        admin = event.params.get("admin") is True
        if not name:
            raise ActionError("name is required: how the client shows in `lxc config trust list`")
        if not projects and not admin:
            raise ActionError(
                "name the projects the client may use (projects='[ci]'), or grant full access, which is "
                "root on every member, deliberately with admin=true"
            )
        if projects and admin:
            raise ActionError("projects and admin=true exclude each other: give one of them")
        if pem:
            try:
                fingerprint = check_client_certificate(pem)
            except DataError as e:
                raise ActionError(f"certificate is refused: {e}") from None
        config = self._config()
        self._require_member(leader=not pem)  # the leader enforces token lifetimes
        if name in self.lxd.trusted_clients():
            raise ActionError(f"a client named {name} is trusted already: remove it first")
        try:
            ensure_projects(self.lxd, projects)
        except AccessError as e:
            raise ActionError(str(e)) from None
        grant = None if admin else projects
        scope = {"projects": ", ".join(projects) if projects else "all (admin: root on every member)"}
        if pem:
            self.lxd.trust_client(name, pem + "\n", grant)
            event.set_results({"name": name, "fingerprint": fingerprint, **scope})
            return
        info = self.lxd.info()
        secure_tokens(self.lxd, config, info)  # the configured lifetime applies to this token too
        token = self.lxd.issue_client_token(name, grant)
        event.set_results({"name": name, "token": token, **scope, **token_terms(token, config, info, "client")})

    def remove_trusted_client(self, event: ops.ActionEvent) -> None:
        """Take a client's trust back, or revoke the tokens issued for it that were not used yet."""
        name = str(event.params.get("name", "")).strip()
        self._require_member()
        trusted = self.lxd.trusted_clients()
        if name in trusted:
            self.lxd.untrust_client(trusted[name].fingerprint)
            event.set_results({"removed": name, "fingerprint": trusted[name].fingerprint})
            return
        pending = [t for t in self.lxd.pending_tokens() if t.kind == "client" and t.name == name]
        if not pending:
            raise ActionError(f"no trusted client named {name!r}: trusted are {', '.join(sorted(trusted)) or 'none'}")
        for token in pending:
            self.lxd.revoke_token(token.operation_id)
        event.set_results({"removed": name, "revoked-tokens": len(pending)})

    # -- support --------------------------------------------------------------------------
    def debug(self, event: ops.ActionEvent) -> None:
        """A redacted tarball for a bug report on this unit; a summary in the results."""
        view = debug_bundle.charm_view(self.model, self.model.get_relation(PEER))
        known = debug_bundle.readable_secrets(self.model, view, ["metrics-client"], has_secrets(self.model))
        event.log("collecting cluster, warnings, members, pools, instances and the daemon log")
        files = debug_bundle.collect(self.lxd, view, int(event.params.get("log-lines", debug_bundle.LOG_LINES)))
        directory = str(event.params.get("directory") or debug_bundle.DEFAULT_DIRECTORY)
        path = debug_bundle.write_bundle(files, directory, self.unit.name.replace("/", "-"), known)
        members = files["cluster-members.json"]
        warnings = files["warnings.json"]
        event.set_results(
            {
                "path": str(path),
                "files": ", ".join(sorted(files)),
                "members": ", ".join(f"{m['server_name']} ({m['status']})" for m in members)
                if isinstance(members, list)
                else members.get("error", ""),
                "warnings": len(warnings) if isinstance(warnings, list) else warnings.get("error", ""),
                "redacted": "secrets redacted: keys, tokens, passwords, the values of every readable secret",
            }
        )
