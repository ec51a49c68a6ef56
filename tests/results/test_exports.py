"""The public names of workmesh.services.results (changing them is an API change)."""

import workmesh.services.results as results


def test_exported_names():
    assert sorted(results.__all__) == sorted(
        [
            "SERVICE_NAME",
            "InfluxConfig",
            "InfluxStore",
            "ParquetStore",
            "ResultsConfig",
            "SeriesStore",
            "create_server",
            "create_store",
            "export_csv",
            "plot_series",
            "serve",
            "series_rows",
        ]
    )
    for name in results.__all__:
        assert getattr(results, name) is not None, name


def test_client_names():
    """The client side lives in one place, workmesh.services.clients (not re-exported by the server package)."""
    import workmesh.services.clients as clients

    assert sorted(clients.__all__) == sorted(
        [
            "MAX_CHUNK_BYTES",
            "MAX_MESSAGE_BYTES",
            "BlockingSeriesWriter",
            "Chunk",
            "PermissionDenied",
            "ReadQuery",
            "ResultsClient",
            "Series",
            "SeriesData",
            "SeriesHandle",
            "SeriesKey",
            "SeriesSummary",
            "SeriesWriter",
            "Unauthenticated",
            "WorkmeshError",
            "from_rpc_error",
        ]
    )
    for name in clients.__all__:
        assert getattr(clients, name) is not None, name
        assert not hasattr(results, name), f"{name} is re-exported by the results server package"
