"""What the running Juju offers the charm, from JUJU_VERSION (one artefact for Juju 2.9, 3.x and 4.x).

Juju 2.9 has no secrets: its agent has no secret-* hook tools (a call fails as a missing command
does) and its charms have no `type: secret` options. Juju 3.0.3 and later have charm secrets
(ops.JujuVersion.has_secrets); user secrets (`juju add-secret`, granted to an application) came in
3.3. Without secrets, join credentials travel sealed to the joiner's own key (sealing.py).
"""

from __future__ import annotations

import ops


def has_secrets(model: ops.Model) -> bool:
    """Charm secrets: the secret-* hook tools exist."""
    return model.juju_version.has_secrets


def has_user_secrets(model: ops.Model) -> bool:
    """User secrets: an operator can hand the charm a secret URI (maas-api-key)."""
    return model.juju_version >= "3.3"
