"""redaction.py: one step between every secret value the charm sees and every text it shows.

Each surface is driven through the charm with the fake LXD answering with an error that quotes a
secret, as LXD does for a MAAS key it cannot parse (`invalid API key "<key>"`, seen on real 5.0.2
in tests/functional/test_reliability.py) and, from 5.21, for any key it does not have
(`Cannot set "maas.api.key" to "<key>": Unknown key`, lxd-6.9:lxd/config/errors.go:17).
"""

from __future__ import annotations

import base64
import json
import logging
import sys
import tarfile
import types

import ops
import pytest
from fake_lxd import FakeLXD, make_token
from ops import testing
from states import REL, announced, ctx, make_state, published

from metrics import generate_certificate
from models import DeviceState, Instance
from redaction import MIN_LENGTH, REDACTED, Redactor, guard, redact, redact_text, strike
from workload import LXDError

# a MAAS API key (18:18:32) pasted with dots for colons: LXD refuses it, quoting it
MAAS_KEY = "Zq4CkP9mDcxyWy8bTs.Hj3RmXw7kLpQ2nVa5e.9fK2pLm4Qx7Rt1Vb8Nc3Zd6Hy0Ws5Ja2"
REFUSED = 'invalid API key "{}"; expected "<consumer secret>:<token key>:<token secret>"'
TOKEN = base64.b64encode(
    json.dumps(
        {"server_name": "m1", "fingerprint": "ab" * 32, "addresses": ["10.0.0.1:8443"], "secret": "s3cr3t" * 8}
    ).encode()
).decode()


# -- the step itself -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data",
    [
        {"core.trust_password": "hunter2-long"},
        {"maas.api.key": "consumer:token:secret"},
        {"loki.auth.password": "pw-value-1"},
        {"key": "abcdefgh"},
        {"cluster_token": "whatever-it-is"},
        {"nested": [{"join-secret": "secret:abc123"}]},
    ],
    ids=["trust password", "maas key", "loki password", "secret content key", "token", "nested"],
)
def test_values_of_secret_keys_are_redacted(data):
    out = json.dumps(redact(data))
    assert REDACTED in out
    for value in ("hunter2-long", "consumer:token:secret", "pw-value-1", "abcdefgh", "whatever-it-is", "secret:abc123"):
        assert value not in out


def test_public_facts_are_kept():
    data = {"certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", "fingerprint": "ab" * 32}
    assert redact(data) == data
    assert redact({"core.https_address": "10.0.0.1:8443", "monkey": "x"}) == {
        "core.https_address": "10.0.0.1:8443",
        "monkey": "x",
    }


def test_private_keys_tokens_and_known_values_are_redacted_wherever_they_show():
    _, key = generate_certificate("m")
    text = f"log: joining with {TOKEN}\nconfig: {key}\nand the password pass-w0rd-99 in a message\n"
    out = redact_text(text, known=["pass-w0rd-99"])
    assert TOKEN not in out and "PRIVATE KEY" not in out and "pass-w0rd-99" not in out
    assert out.count(REDACTED) == 3 and out.startswith("log: joining with ")


def test_the_user_and_password_of_a_url_are_struck_however_short():
    text = "proxy http://ab:cd@squid:3128 and https://user:p@ss@h.internal/x; mail root@localhost, http://squid:3128"
    assert redact_text(text) == (
        "proxy http://<redacted>@squid:3128 and https://<redacted>@h.internal/x; mail root@localhost, http://squid:3128"
    )


def test_an_innocent_base64_blob_is_kept():
    blob = base64.b64encode(json.dumps({"fingerprint": "ab" * 32}).encode()).decode()
    assert redact_text(blob) == blob


def test_a_known_value_is_struck_in_each_form_a_text_quotes_it():
    secret = 'multi "line"\nsecret\\value'
    quoted = {
        "as is (LXD 5.0: cannot set 'k' to 'v')": f"cannot set 'maas.api.key' to '{secret}': Unknown key",
        "Go's %q (LXD 5.21+) and json.dumps": f"Cannot set {json.dumps(secret)}: Unknown key",
        "repr (config.shown in a status)": f"join failed: {secret!r}",
    }
    for where, text in quoted.items():
        out = strike(text, [secret])
        assert REDACTED in out and "secret" not in out.replace("<redacted>", ""), where


def test_the_secret_inside_a_known_token_is_struck_too(cluster_pem):
    inner = "0123456789abcdef" * 4
    token = make_token("lxd-cluster-1", cluster_pem, secret=inner)
    assert inner not in strike(f"no join operation for secret {inner}", [token])


def test_a_value_cut_short_loses_what_is_left_of_it():
    """config.shown() cuts a status quote at 200 characters ("..."), the join error is kept to 500."""
    message = f'LXD said: Cannot set "maas.api.key" to "{MAAS_KEY}": Unknown key'
    for cut in (message[:60] + "...y' (99 characters)", message[:60]):
        out = strike(cut, [MAAS_KEY])
        assert MAAS_KEY[:MIN_LENGTH] not in out and out.startswith('LXD said: Cannot set "maas.api.key" to "<redacted>')


def test_short_values_are_never_struck():
    """A secret's markers (member: yes, kind: password) and any value under MIN_LENGTH stay: striking
    them would cut innocent words (core.trust_password, "no database role")."""
    redactor = Redactor()
    redactor.remember({"member": "yes", "kind": "password", "short": "abc"})
    text = "member yes: core.trust_password set; abcdef (no database role)"
    assert redactor.text(text) == text and redactor.known == set()


def test_action_results_lose_known_values_and_keep_a_token_handed_out_on_purpose():
    redactor = Redactor()
    redactor.remember({"key": MAAS_KEY})
    out = redactor.results({"token": TOKEN, "members": f"error: {MAAS_KEY}", "n": 3, "rows": [MAAS_KEY]})
    assert out == {"token": TOKEN, "members": f"error: {REDACTED}", "n": 3, "rows": [REDACTED]}


class RecordingBackend:
    """What guard() wraps: ops's model backend, reduced to the hook tools it talks through."""

    def __init__(self, secrets: dict[str, dict[str, str]]):
        self.secrets, self.said = secrets, []
        self._juju_context = types.SimpleNamespace(model_uuid="m", unit_name="lxd-cluster/0")

    def secret_get(self, *, id=None, label=None, refresh=False, peek=False):
        return dict(self.secrets[id or label])

    def secret_add(self, content, **kw):
        return "secret:new"

    def secret_set(self, id, *, content=None, **kw):
        pass

    def status_set(self, status, message="", *, is_app=False):
        self.said.append(("status", message))

    def juju_log(self, level, message):
        self.said.append(("log", message))

    def action_set(self, results):
        self.said.append(("results", json.dumps(results)))

    def action_log(self, message):
        self.said.append(("action-log", message))

    def action_fail(self, message=""):
        self.said.append(("fail", message))


def test_every_hook_tool_that_shows_text_is_guarded_once_a_secret_was_read():
    backend = RecordingBackend({"secret:maas": {"key": MAAS_KEY}})
    hook = sys.excepthook
    redactor = guard(types.SimpleNamespace(_backend=backend))
    sys.excepthook = hook
    backend.secret_get(id="secret:maas")
    backend.secret_add({"value": "added-in-this-hook-1"}, label="x")
    backend.secret_set("secret:x", content={"value": "set-in-this-hook-22"})
    echo = f'Cannot set "maas.api.key" to "{MAAS_KEY}" added-in-this-hook-1 set-in-this-hook-22'
    backend.status_set("blocked", echo)
    backend.juju_log("ERROR", echo)
    backend.action_set({"members": echo})
    backend.action_log(echo)
    backend.action_fail(echo)
    assert [where for where, _ in backend.said] == ["status", "log", "results", "action-log", "fail"]
    for where, text in backend.said:
        assert MAAS_KEY not in text and "in-this-hook" not in text and text.count(REDACTED) == 3, where
    assert redactor.known == {MAAS_KEY, "added-in-this-hook-1", "set-in-this-hook-22"}


def test_an_uncaught_exception_reaches_juju_log_and_stderr_without_the_secret(capsys):
    """ops's own except hook: the traceback (juju-log), a security event with repr() of the error
    (juju-log, past any logging handler) and, for an action, a line on stderr."""
    backend = RecordingBackend({"secret:maas": {"key": MAAS_KEY}})
    root = logging.getLogger()
    handlers, hook = list(root.handlers), sys.excepthook
    ops.log.setup_root_logging(backend, exc_stderr=True)
    ops.log._get_juju_log_and_app_id.cache_clear()
    try:
        guard(types.SimpleNamespace(_backend=backend))
        backend.secret_get(id="secret:maas")
        try:
            raise LXDError(f'Cannot set "maas.api.key" to "{MAAS_KEY}": Unknown key')
        except LXDError:
            sys.excepthook(*sys.exc_info())
    finally:
        sys.excepthook = hook
        for handler in set(root.handlers) - set(handlers):
            root.removeHandler(handler)
        ops.log._get_juju_log_and_app_id.cache_clear()
    logged = "\n".join(text for where, text in backend.said if where == "log")
    assert "Traceback" in logged and "sys_crash" in logged and REDACTED in logged and MAAS_KEY not in logged
    err = capsys.readouterr().err
    assert "Uncaught LXDError" in err and MAAS_KEY not in err


# -- each surface, through the charm ---------------------------------------------------------------
def maas_leader(lxd: FakeLXD, pem: str) -> testing.State:
    """A formed cluster's leader with MAAS set, the key in a user secret."""
    lxd.be_member("lxd-cluster-0")
    key = testing.Secret({"key": MAAS_KEY}, owner=None)
    config = {"maas-api-url": "http://maas:5240/MAAS", "maas-api-key": key.id}
    return make_state(leader=True, app=published(pem), secrets=[key], config=config)


def test_lxd_quoting_the_maas_key_leaves_it_out_of_the_status(lxd, cluster_pem):
    out = ctx().run(ctx().on.config_changed(), maas_leader(lxd, cluster_pem))
    assert out.unit_status.name == "blocked"
    assert out.unit_status.message == "LXD: " + REFUSED.format(REDACTED)


INNER = "0123456789abcdef" * 4  # LXD's own secret inside the join token


def failed_join(lxd: FakeLXD, cluster_pem: str, refusal: str) -> tuple[testing.Context, testing.State, str]:
    """Unit 1 joins with a token whose secret is INNER and LXD refuses with refusal.format(token=...)."""
    token = make_token("lxd-cluster-1", cluster_pem, secret=INNER)
    secret = testing.Secret({"kind": "token", "value": token}, owner=None)
    app = published(cluster_pem, **{"join-unit": "lxd-cluster/1", "join-secret": secret.id, "join-id": "j1"})
    lxd.devices["/dev/vdc"] = DeviceState("/dev/vdc", exists=True, is_block=True)
    state = make_state(ip="10.0.0.2", app=app, secrets=[secret], config={"storage-device": "/dev/vdc"})
    lxd.fail_next_preseed = refusal.format(token=token, inner=INNER)
    context = ctx(1)
    return context, context.run(context.on.config_changed(), state), token


def test_lxd_quoting_a_join_secret_leaves_it_out_of_juju_log_and_status(lxd, cluster_pem):
    context, out, _ = failed_join(lxd, cluster_pem, "Failed to join cluster: no join operation matches secret {inner}")
    logged = "\n".join(line.message for line in context.juju_log)
    assert "join failed (attempt 1): Failed to join cluster: no join operation matches secret <redacted>" in logged
    assert INNER not in logged and INNER not in out.unit_status.message and REDACTED in out.unit_status.message


def test_lxd_quoting_a_join_secret_leaves_it_out_of_the_join_error_in_the_databag(lxd, cluster_pem):
    """The unit databag's join-error (what the issuer and the operator read) is LXD's words without
    the credential: every unit of the application, and any related reader, sees that databag."""
    refusal = "Failed to join cluster: token {token} has no matching secret {inner}"
    _, out, token = failed_join(lxd, cluster_pem, refusal)
    bag = next(r for r in out.relations if r.endpoint == "cluster").local_unit_data
    assert bag["join-failed"] == "j1" and bag["join-error"].startswith("Failed to join cluster: token ")
    assert INNER not in bag["join-error"] and token not in bag["join-error"] and REDACTED in bag["join-error"]


def test_the_debug_action_result_never_quotes_a_secret(lxd, cluster_pem, tmp_path, monkeypatch):
    state = maas_leader(lxd, cluster_pem)
    monkeypatch.setattr(lxd, "members", lambda: (_ for _ in ()).throw(LXDError(REFUSED.format(MAAS_KEY))))
    context = ctx()
    context.run(context.on.action("debug", params={"directory": str(tmp_path)}), state)
    assert context.action_results["members"] == REFUSED.format(REDACTED)


def test_the_debug_bundle_never_quotes_the_maas_key_the_config_names(lxd, cluster_pem, tmp_path):
    state = maas_leader(lxd, cluster_pem)
    lxd.warnings = [{"type": "maas", "last_message": f'invalid API key "{MAAS_KEY}"', "status": "new"}]
    context = ctx()
    context.run(context.on.action("debug", params={"directory": str(tmp_path)}), state)
    with tarfile.open(context.action_results["path"]) as tar:
        bundle = "".join(tar.extractfile(m).read().decode() for m in tar.getmembers())
    assert MAAS_KEY not in bundle and f'invalid API key \\"{REDACTED}\\"' in bundle


def test_an_action_failure_and_its_progress_log_never_quote_a_secret(lxd, cluster_pem, monkeypatch):
    lxd.be_member("lxd-cluster-0", "lxd-cluster-1", "lxd-cluster-2", "lxd-cluster-3")
    lxd.instance_rows = [Instance("a", "lxd-cluster-3", "Running")]
    refusal = f"Failed to start: the client token {TOKEN} is not valid"
    start = lxd.set_instance_state

    def set_state(name, action, project="default"):  # it starts only where it was
        if action == "start" and lxd.instance(name, project).location != "lxd-cluster-3":
            raise LXDError(refusal)
        start(name, action, project)

    monkeypatch.setattr(lxd, "set_instance_state", set_state)
    state = make_state(leader=True, app=published(cluster_pem), peers={u: announced(u) for u in (1, 2, 3)})
    context = ctx()
    with pytest.raises(testing.ActionFailed) as failed:
        context.run(context.on.action("remove-node", params={"name": "lxd-cluster-3", "evacuate": True}), state)
    assert TOKEN not in failed.value.message and REDACTED in failed.value.message
    assert context.action_logs and not any(TOKEN in line for line in context.action_logs)
    assert any(REDACTED in line for line in context.action_logs)


def test_a_failed_departure_hook_never_quotes_a_secret(lxd):
    lxd.be_member("lxd-cluster-2", "lxd-cluster-0", "lxd-cluster-1")
    lxd.instance_rows = [Instance("pinned", "lxd-cluster-2", "Running")]
    lxd.unmovable = {"pinned": f"Failed to move: the join token {TOKEN} was refused"}
    state = make_state(ip="10.0.0.3", peers={0: announced(0), 1: announced(1)}, planned_units=2)
    context = ctx(2)
    with pytest.raises(testing.errors.UncaughtCharmError) as failed:
        context.run(context.on.relation_departed(state.get_relation(REL), remote_unit=0, departing_unit=2), state)
    error = failed.value.__cause__
    assert type(error).__name__ == "DepartureFailed" and "juju resolve" in str(error)
    assert TOKEN not in str(error) and REDACTED in str(error)
    assert not any(TOKEN in line.message for line in context.juju_log)
