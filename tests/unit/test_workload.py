"""workload.LXD against a stand-in daemon (lxd_standin.py): the requests it makes for a call."""

from __future__ import annotations

from lxd_standin import serve

import workload


def test_an_image_reference_is_one_quoted_path_segment(tmp_path, cluster_pem):
    """An image reference is one quoted path segment: ubuntu/24.04 (as images: copies bring) and, from
    an operator's typo, characters a raw URL cannot carry (LXD answers `not found`, not a broken request)."""
    requests: list[str] = []
    server = serve(tmp_path, cluster_pem, requests)
    try:
        assert not workload.LXD(str(tmp_path)).image_exists("ubuntu/24.04")
        assert not workload.LXD(str(tmp_path)).image_exists("no such image?")
    finally:
        server.shutdown()
        server.server_close()
    assert requests == [
        "GET /1.0/images/aliases/ubuntu%2F24.04",
        "GET /1.0/images/ubuntu%2F24.04",
        "GET /1.0/images/aliases/no%20such%20image%3F",
        "GET /1.0/images/no%20such%20image%3F",
    ]
