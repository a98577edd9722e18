"""workload.LXD against a stand-in daemon (lxd_standin.py): the requests it makes for a call."""

from __future__ import annotations

from lxd_standin import serve

import workload


def test_an_alias_with_a_slash_is_one_path_segment(tmp_path, cluster_pem):
    """images: remote copies bring aliases such as ubuntu/24.04: asked for as one name, not two."""
    requests: list[str] = []
    server = serve(tmp_path, cluster_pem, requests)
    try:
        assert not workload.LXD(str(tmp_path)).image_exists("ubuntu/24.04")
    finally:
        server.shutdown()
        server.server_close()
    assert requests == ["GET /1.0/images/aliases/ubuntu%2F24.04", "GET /1.0/images/ubuntu%2F24.04"]
