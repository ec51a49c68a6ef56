"""The public names of workmesh.services.gateway are pinned: changing them is an API change."""

from workmesh.services import gateway


def test_exports():
    assert sorted(gateway.__all__) == sorted(
        [
            "GatewayConfig",
            "GatewayServer",
            "JobStore",
            "MemoryJobStore",
            "RetryPolicy",
            "create_server",
            "serve",
        ]
    )
    for name in gateway.__all__:
        assert getattr(gateway, name) is not None
