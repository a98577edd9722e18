"""The `debug` action's bundle: cluster, warnings, members, pools, daemon log and the charm's view
of the peer relation, in one tarball on the unit, with every secret redacted.

Redaction (redaction.py, the step every text the charm shows passes) is by key name (password,
secret, token, key), by shape (PEM private keys, LXD join and client tokens) and by value (every
secret value the charm can read is replaced wherever it shows).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import tarfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from redaction import redact, redact_text
from workload import LXD, LXDError

DEFAULT_DIRECTORY = "/var/log/lxd-cluster"
LOG_LINES = 500


def _tail(path: Path, lines: int) -> str:
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 256 * lines))
        return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:]) + "\n"


def daemon_log(lxd: LXD, lines: int = LOG_LINES) -> str:
    """The last lines of LXD's own log (snap: logs/lxd.log in LXD_DIR; deb: /var/log/lxd)."""
    for path in (Path(lxd.lxd_dir, "logs", "lxd.log"), Path(lxd.lxd_dir, "lxd.log"), Path("/var/log/lxd/lxd.log")):
        if path.is_file():
            return _tail(path, lines)
    return "no LXD log found\n"


def _read(call: Callable[[], Any]) -> Any:
    """One section; an LXD that refuses it leaves its error in the bundle, not an empty bundle."""
    try:
        return call()
    except LXDError as e:
        return {"error": str(e)}


def collect(lxd: LXD, charm_view: dict[str, Any], lines: int = LOG_LINES) -> dict[str, Any]:
    """Bundle file name -> content (not yet redacted)."""

    def pools() -> list[dict[str, Any]]:
        rows = lxd._api("get", "storage-pools", params={"recursion": 1})["metadata"] or []
        for row in rows:
            row["resources"] = _read(lambda n=row["name"]: lxd._api("get", f"storage-pools/{n}/resources")["metadata"])
        return rows

    return {
        "server.json": _read(lambda: lxd._api("get", "")["metadata"]),
        "cluster-members.json": _read(lambda: [dataclasses.asdict(m) for m in lxd.members()]),
        "warnings.json": _read(lambda: lxd._api("get", "warnings", params={"recursion": 1})["metadata"] or []),
        "storage-pools.json": _read(pools),
        "instances.json": _read(lambda: [dataclasses.asdict(i) for i in lxd.instances()]),
        "lxd.log": daemon_log(lxd, lines),
        "charm.json": charm_view,
    }


def write_bundle(files: dict[str, Any], directory: str, name: str, known: Iterable[str] = ()) -> Path:
    """Redact every file and write them as NAME-<time>.tar.gz (mode 0600) in directory."""
    known = tuple(known)
    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = out_dir / f"{name}-{stamp}.tar.gz"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for filename, content in files.items():
            data = redact_text(content, known).encode() if isinstance(content, str) else _dump(content, known)
            info = tarfile.TarInfo(f"{name}/{filename}")
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
            tar.addfile(info, io.BytesIO(data))
    return path


def charm_view(model: Any, relation: Any) -> dict[str, Any]:
    """What this unit sees of the peer relation (app and unit databags) and of itself."""
    view: dict[str, Any] = {"unit": model.unit.name, "leader": model.unit.is_leader(), "relation": None}
    if relation is not None:
        units = [model.unit, *sorted(relation.units, key=lambda u: u.name)]
        view["relation"] = {
            "id": relation.id,
            "app-data": dict(relation.data[model.app]),
            "units": {u.name: dict(relation.data[u]) for u in units},
        }
    return view


def readable_secrets(model: Any, view: dict[str, Any], labels: Iterable[str], secrets: bool = True) -> list[str]:
    """Every secret value this unit can read: by label, and by the secret ids the databags and the
    config (maas-api-key) name; a MAAS key given as itself (Juju < 3.3). secrets: Juju has secrets
    (2.9 has no secret-* hook tools to ask)."""
    plain = str(model.config.get("maas-api-key") or "")
    values: list[str] = [plain] if plain and not plain.startswith("secret:") else []
    if not secrets:
        return values
    ids = {v for v in model.config.values() if isinstance(v, str) and v.startswith("secret:")}
    relation = view.get("relation") or {}
    for bag in [relation.get("app-data", {}), *relation.get("units", {}).values()]:
        ids.update(v for v in bag.values() if v.startswith("secret:"))
    for kw in [{"label": label} for label in labels] + [{"id": i} for i in sorted(ids)]:
        try:
            values += model.get_secret(**kw).get_content(refresh=True).values()
        except Exception:  # noqa: BLE001 - gone, not granted or not ours: nothing to redact then
            continue
    return values


def _dump(content: Any, known: tuple[str, ...]) -> bytes:
    text = json.dumps(redact(content, known), indent=1, sort_keys=True, default=str)
    return redact_text(text, known).encode()  # secrets in values with innocent keys
