"""One redaction step for every text the charm shows: status, juju-log, action output, a failed hook.

Every secret value Juju hands the charm (secret-get) or the charm hands Juju (secret-add,
secret-set) is remembered for the hook. Every text the charm hands Juju (status-set, juju-log,
action-log, action-fail) loses those values, in each form they may be quoted in, and anything
shaped like a credential (PEM private keys, LXD join and client tokens, the user:password@ of a
URL such as a proxy's); action results lose the
remembered values only, because two actions hand out a fresh token on purpose.

Both directions are wrapped where ops talks to Juju, its model backend: every secret read passes
there, whichever module (or library) makes it, and so does every text, including the lines ops
itself logs (its security events call the backend directly, with repr() of an uncaught
exception, so a logging.Filter on the juju-log handler would miss them). ops has no public seam
for either direction. No ops import here: the debug bundle uses the same functions.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

REDACTED = "<redacted>"
# Shorter values are never struck: they would strike innocent text (a 3-character value cuts
# every word it occurs in), and the charm's own secrets keep short markers beside the credential
# (member: yes/no, kind: token/password). Every credential the charm handles is 32 characters or
# more: a join or client token (~200), a trust password (32), a MAAS API key (18:18:32), a PEM key.
MIN_LENGTH = 12
_SECRET_KEY = re.compile(r"password|secret|token|credential|join-queue|(^|[._-])key$", re.IGNORECASE)
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL)
_BASE64 = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")
# the userinfo of a URL (a proxy's http://user:password@host:3128): whatever its length
_URL_USERINFO = re.compile(r"(?<=://)[^\s/'\"]+@")  # greedy: to the last @ of the authority
_CUT = re.compile(r"\.\.\.|$")  # where config.shown() and the join error's [:500] cut a text short


def _token(blob: str) -> dict[str, Any] | None:
    """An LXD join or client token: base64 of a JSON object that carries a secret."""
    try:
        decoded = json.loads(base64.b64decode(blob, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return decoded if isinstance(decoded, dict) and "secret" in decoded else None


def forms(value: str) -> set[str]:
    """A secret value as a text may quote it: as is (LXD 5.0's `cannot set 'k' to 'v'`), JSON-escaped
    (json.dumps in the charm; LXD 5.21+ quotes with Go's %q, `Cannot set "k" to "v"`,
    lxd-6.9:lxd/config/errors.go:17, which escapes printable text as JSON does), repr() (config.shown
    in a status), and, for an LXD token, the secret inside it. Not covered: URL-encoding (the charm
    sends no secret in a URL, so LXD has none to echo) and base64 of a raw value (the only base64
    that carries a credential is an LXD token, caught by its shape)."""
    found = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1], repr(value)[1:-1]}
    token = _token(value)
    if token is not None and isinstance(token["secret"], str):
        found.add(token["secret"])
    return {f for f in found if len(f) >= MIN_LENGTH}


def strike(text: str, known: Iterable[str]) -> str:
    """text without the known values (every form); a value cut short at the end of text or before
    "..." loses what is left of it too."""
    every = sorted({f for value in known if len(value) >= MIN_LENGTH for f in forms(value)}, key=len, reverse=True)
    for form in every:
        text = text.replace(form, REDACTED)
    for form in every:
        for end in reversed([m.start() for m in _CUT.finditer(text)]):
            if text[max(0, end - MIN_LENGTH) : end] not in form:
                continue  # no piece of this value ends here
            for size in range(min(len(form) - 1, end), MIN_LENGTH - 1, -1):
                if text.startswith(form[:size], end - size):
                    text = text[: end - size] + REDACTED + text[end:]
                    break
    return text


def redact_text(text: str, known: Iterable[str] = ()) -> str:
    """text without the known values and without anything shaped like a credential."""
    text = _URL_USERINFO.sub(f"{REDACTED}@", _PRIVATE_KEY.sub(REDACTED, strike(text, known)))
    return _BASE64.sub(lambda m: REDACTED if _token(m.group(0)) is not None else m.group(0), text)


def redact(data: Any, known: Iterable[str] = ()) -> Any:
    """A copy of data (dicts, lists, strings) with secret keys' values and secret text replaced."""
    known = tuple(known)
    if isinstance(data, dict):
        return {
            k: REDACTED if _SECRET_KEY.search(str(k)) and v not in ("", None, [], {}) else redact(v, known)
            for k, v in data.items()
        }
    if isinstance(data, list | tuple):
        return [redact(v, known) for v in data]
    if isinstance(data, str):
        return redact_text(data, known)
    return data


def _strike_all(data: Any, known: Iterable[str]) -> Any:
    if isinstance(data, dict):
        return {k: _strike_all(v, known) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_strike_all(v, known) for v in data]
    return strike(data, known) if isinstance(data, str) else data


class Redactor:
    """The secret values this hook has seen, and the texts the charm shows without them."""

    def __init__(self) -> None:
        self.known: set[str] = set()

    def remember(self, content: Mapping[str, Any] | None) -> None:
        self.known.update(v for v in (content or {}).values() if isinstance(v, str) and len(v) >= MIN_LENGTH)

    def text(self, text: str) -> str:
        return redact_text(text, self.known)

    def results(self, results: dict[str, Any]) -> dict[str, Any]:
        """Action results: the remembered values go; a token the action hands out on purpose stays."""
        return _strike_all(results, self.known)

    def scrub(self, error: BaseException) -> None:
        """An exception and the ones it carries, their messages redacted (what ops prints of it)."""
        seen: set[int] = set()
        current: BaseException | None = error
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            current.args = tuple(self.text(a) if isinstance(a, str) else a for a in current.args)
            current = current.__cause__ or current.__context__


def guard(model: Any) -> Redactor:
    """Wrap the hook tools of model (an ops.Model) and the uncaught-exception hook ops installed:
    secret values go into the Redactor returned, texts out through it."""
    redactor = Redactor()
    backend = model._backend  # ops's one channel to Juju (ops.testing replaces it with its own)
    secret_get, secret_add, secret_set = backend.secret_get, backend.secret_add, backend.secret_set
    status_set, juju_log = backend.status_set, backend.juju_log
    action_set, action_log, action_fail = backend.action_set, backend.action_log, backend.action_fail

    def read(**kwargs: Any) -> dict[str, str]:
        content = secret_get(**kwargs)
        redactor.remember(content)
        return content

    def add(content: dict[str, str], **kwargs: Any) -> str:
        redactor.remember(content)
        return secret_add(content, **kwargs)

    def update(secret_id: str, **kwargs: Any) -> None:
        redactor.remember(kwargs.get("content"))
        return secret_set(secret_id, **kwargs)

    backend.secret_get, backend.secret_add, backend.secret_set = read, add, update
    backend.status_set = lambda status, message="", **kw: status_set(status, redactor.text(message), **kw)
    backend.juju_log = lambda level, message: juju_log(level, redactor.text(message))
    backend.action_set = lambda results: action_set(redactor.results(results))
    backend.action_log = lambda message: action_log(redactor.text(message))
    backend.action_fail = lambda message="": action_fail(redactor.text(message))
    sys.excepthook = _scrubbing(sys.excepthook, redactor)
    return redactor


def _scrubbing(hook: Callable[..., Any], redactor: Redactor) -> Callable[..., Any]:
    """ops's hook logs an uncaught exception, and for an action prints it to stderr (Juju shows
    that to whoever ran it): redact the exception first."""

    def excepthook(etype: type[BaseException], value: BaseException, tb: Any) -> Any:
        redactor.scrub(value)
        return hook(etype, value, tb)

    return excepthook
