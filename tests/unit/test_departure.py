"""Scale-in: a departing member moves its instances to the emptiest online members, then leaves."""

from __future__ import annotations

import pytest
from states import REL, announced, ctx, make_state, published

from action_checks import ActionError
from departure import pick_target
from models import Instance


# -- juju remove-unit ------------------------------------------------------------------------------
def test_departing_unit_moves_its_instances_then_leaves(lxd, cluster_pem):
    lxd.be_member("lxd-cluster-2", "lxd-cluster-0", "lxd-cluster-1")
    lxd.instance_rows = [Instance("a", "lxd-cluster-2", "Running"), Instance("b", "lxd-cluster-0", "Running")]
    state = make_state(ip="10.0.0.3", app=published(cluster_pem), peers={0: announced(0), 1: announced(1)})
    ctx(2).run(ctx(2).on.relation_departed(state.get_relation(REL), remote_unit=0, departing_unit=2), state)
    assert lxd.moves == [("a", "lxd-cluster-1")]  # the emptiest other member
    assert lxd.removed == [("lxd-cluster-2", False)]


# -- placement -------------------------------------------------------------------------------------
def test_pick_target_is_the_emptiest_member():
    assert pick_target({"m1": 2, "m2": 0, "m3": 0}) == "m2"
    with pytest.raises(ActionError):
        pick_target({})
