"""`juju deploy lxd-cluster -n 3` and `juju add-unit` on a real controller (pytest-operator)."""

from __future__ import annotations

import pytest

APP = "lxd-cluster"


@pytest.mark.abort_on_fail
async def test_deploy_three_units_forms_one_cluster(ops_test, charm_path):
    await ops_test.model.deploy(str(charm_path), application_name=APP, num_units=3)
    await ops_test.model.wait_for_idle(apps=[APP], status="active", timeout=40 * 60)
    messages = sorted(u.workload_status_message for u in ops_test.model.applications[APP].units)
    assert len(messages) == 3
    for message in messages:
        assert " of 3 " in message and "fully operational" in message, message


async def test_add_unit_joins_the_same_cluster(ops_test):
    await ops_test.model.applications[APP].add_unit(count=1)
    await ops_test.model.wait_for_idle(apps=[APP], status="active", timeout=30 * 60, wait_for_exact_units=4)
    for unit in ops_test.model.applications[APP].units:
        assert " of 4 " in unit.workload_status_message, unit.workload_status_message
