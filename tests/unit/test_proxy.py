"""Issue 25 part 1: the model's proxy reaches LXD (the leader, cluster-wide) and snapd (every unit);
the lxd-*-proxy options replace it for LXD alone; a proxy's credentials are never shown."""

from __future__ import annotations

import pytest
from ops import testing
from states import ctx, make_state

from proxy import ProxyError, ProxySettings, digest, model_proxy, option_proxy, snapd_plan
from workload import LXDError

MODEL = {
    "JUJU_CHARM_HTTP_PROXY": "http://squid.internal:3128",
    "JUJU_CHARM_HTTPS_PROXY": "http://squid.internal:3129",
    "JUJU_CHARM_NO_PROXY": "localhost,.internal,10.0.0.0/8",
}
PASSWORD = "hunter2-open-sesame"  # noqa: S105 - a test value
WITH_CREDENTIALS = f"http://proxyuser:{PASSWORD}@squid.internal:3128"


@pytest.fixture
def model(monkeypatch):
    """`juju model-config juju-http-proxy=...`: what Juju exports to every hook."""

    def set_proxy(**variables: str) -> None:
        for name in ("JUJU_CHARM_HTTP_PROXY", "JUJU_CHARM_HTTPS_PROXY", "JUJU_CHARM_NO_PROXY"):
            monkeypatch.setenv(name, variables.get(name, ""))

    set_proxy()
    return set_proxy


def _lxd_proxy(lxd) -> dict[str, str]:
    return {k: lxd.config.get(k, "") for k in ("core.proxy_http", "core.proxy_https", "core.proxy_ignore_hosts")}


def test_the_leader_gives_lxd_the_models_proxy_cluster_wide(lxd, model):
    model(**MODEL)
    ctx().run(ctx().on.install(), make_state(leader=True, planned_units=1))
    assert _lxd_proxy(lxd) == {
        "core.proxy_http": "http://squid.internal:3128",
        "core.proxy_https": "http://squid.internal:3129",
        "core.proxy_ignore_hosts": "localhost,.internal,10.0.0.0/8",
    }


def test_lxds_proxy_is_cleared_when_the_models_is(lxd, model):
    model(**MODEL)
    ctx().run(ctx().on.install(), make_state(leader=True, planned_units=1))
    model()
    ctx().run(ctx().on.update_status(), make_state(leader=True, planned_units=1))
    assert _lxd_proxy(lxd) == {"core.proxy_http": "", "core.proxy_https": "", "core.proxy_ignore_hosts": ""}


def test_a_unit_that_is_not_the_leader_leaves_lxds_cluster_wide_keys_alone(lxd, model):
    model(**MODEL)
    ctx(1).run(ctx(1).on.install(), make_state(ip="10.0.0.2"))
    assert _lxd_proxy(lxd) == {"core.proxy_http": "", "core.proxy_https": "", "core.proxy_ignore_hosts": ""}


def test_the_options_replace_the_models_proxy_for_lxd_alone(lxd, host, model):
    host.start_snapd()
    model(**MODEL)
    config = {"lxd-https-proxy": "http://lxd-proxy.internal:8080", "lxd-no-proxy": "10.1.0.0/16"}
    ctx().run(ctx().on.install(), make_state(leader=True, planned_units=1, config=config))
    # all three from the options: the model's http proxy does not leak into the override
    assert _lxd_proxy(lxd) == {
        "core.proxy_http": "",
        "core.proxy_https": "http://lxd-proxy.internal:8080",
        "core.proxy_ignore_hosts": "10.1.0.0/16",
    }
    assert host.state["system"]["proxy"] == {
        "http": "http://squid.internal:3128",
        "https": "http://squid.internal:3129",
        "no-proxy": "localhost,.internal,10.0.0.0/8",
    }


def test_snapd_follows_the_models_proxy_on_every_unit_and_is_cleared_with_it(lxd, host, model):
    host.start_snapd()
    model(**MODEL)
    out = ctx(1).run(ctx(1).on.install(), make_state(ip="10.0.0.2"))
    assert host.state["system"]["proxy"]["https"] == "http://squid.internal:3129"
    model()
    ctx(1).run(ctx(1).on.update_status(), out)  # the next hook starts from what this one left
    assert "proxy" not in host.state["system"]


def test_a_snapd_proxy_someone_else_set_is_left_alone(lxd, host, model):
    host.start_snapd()
    state = host.state
    state["system"] = {"proxy": {"http": "http://juju-snap-proxy:3128"}}  # Juju's snap-http-proxy, say
    host.state = state
    model(**MODEL)
    ctx(1).run(ctx(1).on.install(), make_state(ip="10.0.0.2"))
    proxy = host.state["system"]["proxy"]
    assert proxy["http"] == "http://juju-snap-proxy:3128"
    assert proxy["https"] == "http://squid.internal:3129"  # unset before: the charm's to set


def test_no_snapd_means_no_snapd_call(lxd, host, model):
    model(**MODEL)  # Debian 12: a deb LXD, no snapd
    ctx().run(ctx().on.install(), make_state(leader=True, planned_units=1))
    assert host.state["api"] == [] and host.calls == []
    assert _lxd_proxy(lxd)["core.proxy_https"] == "http://squid.internal:3129"


@pytest.mark.parametrize(
    "variable, value",
    [
        ("JUJU_CHARM_HTTPS_PROXY", "squid.internal:3128"),
        ("JUJU_CHARM_HTTP_PROXY", f"http://proxyuser:{PASSWORD}@squid:notaport"),
        ("JUJU_CHARM_HTTPS_PROXY", "socks5://squid:1080"),
        ("JUJU_CHARM_NO_PROXY", "localhost;10.0.0.1"),
    ],
)
def test_a_model_proxy_that_does_not_parse_blocks_naming_the_variable_and_changes_nothing(
    lxd, host, model, variable, value
):
    host.start_snapd()
    model(**{**MODEL, variable: value})
    out = ctx().run(ctx().on.install(), make_state(leader=True, planned_units=1))
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert variable in out.unit_status.message and "juju model-config" in out.unit_status.message
    assert PASSWORD not in out.unit_status.message
    assert lxd.calls == [] and lxd.preseeds == [] and host.calls == [] and host.state["api"] == []


def test_proxy_credentials_lxd_echoes_never_reach_status_or_logs(lxd, host, model, monkeypatch):
    """LXD 5.0 quotes a value it refuses (`cannot set 'KEY' to 'VALUE'`): the password goes."""
    model(JUJU_CHARM_HTTPS_PROXY=WITH_CREDENTIALS)
    refuse = lxd.update_config

    def update_config(config):
        if config.get("core.proxy_https"):
            raise LXDError(f"cannot set 'core.proxy_https' to '{config['core.proxy_https']}': refused")
        return refuse(config)

    monkeypatch.setattr(lxd, "update_config", update_config)
    context = ctx()
    out = context.run(context.on.install(), make_state(leader=True, planned_units=1))
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert "core.proxy_https" in out.unit_status.message  # what was refused is still said
    shown = [out.unit_status.message, *(line.message for line in context.juju_log)]
    assert not [text for text in shown if PASSWORD in text or "proxyuser" in text]


def test_an_option_with_credentials_is_refused_without_echoing_them():
    with pytest.raises(ProxyError) as refused:
        option_proxy({"lxd-https-proxy": f"ftp://proxyuser:{PASSWORD}@squid:3128"})
    assert "lxd-https-proxy" in str(refused.value) and PASSWORD not in str(refused.value)


def test_the_credentials_of_a_proxy_url_are_what_the_redactor_is_fed():
    settings = model_proxy({"JUJU_CHARM_HTTP_PROXY": WITH_CREDENTIALS, "JUJU_CHARM_HTTPS_PROXY": "http://squid:3128"})
    assert settings.credentials() == {
        "http-proxy-url": WITH_CREDENTIALS,
        "http-proxy-userinfo": f"proxyuser:{PASSWORD}",
    }


def test_no_option_set_means_lxd_follows_the_model():
    assert option_proxy({"lxd-http-proxy": "", "lxd-https-proxy": "", "lxd-no-proxy": ""}) is None


def test_snapd_options_the_charm_set_follow_the_model_and_others_stay():
    wanted = ProxySettings("http://new:3128", "", "localhost").snapd_config()
    current = {"proxy.http": "http://old:3128", "proxy.https": "http://someone:3128"}
    ours = {"proxy.http": digest("http://old:3128")}
    changes, foreign = snapd_plan(current, wanted, ours)
    assert changes == {"proxy.http": "http://new:3128", "proxy.no-proxy": "localhost"}
    assert foreign == ["proxy.https"]
