def test_storage_sizes_compare_by_bytes():
    from config import size_bytes

    assert size_bytes("1GiB") == size_bytes("1024MiB") == 1024**3
    assert size_bytes("2G") == size_bytes("2GB") == 2 * 1000**3
    assert size_bytes("lots") == 0


def test_a_joiner_follows_the_clusters_pool_and_network_not_changed_options():
    from config import CharmConfig
    from instance_network import as_the_cluster_has_it
    from models import ClusterInfo

    changed = CharmConfig(storage_driver="btrfs", storage_size="5GiB", network_mode="managed-bridge")
    cluster = ClusterInfo("10.0.0.1:8443", "PEM", "fp", network="bridged:br1", pool_driver="dir", pool_size="1GiB")
    followed = as_the_cluster_has_it(changed, cluster)
    assert (followed.storage_driver, followed.storage_size) == ("dir", "1GiB")
    assert (followed.network_mode, followed.bridge) == ("bridged", "br1")
    assert as_the_cluster_has_it(changed, ClusterInfo()) == changed  # no cluster yet: the options
