"""The public names of workmesh.services.results (changing them is an API change)."""

import workmesh.services.results as results


def test_exported_names():
    assert sorted(results.__all__) == sorted(
        [
            "MAX_CHUNK_BYTES",
            "MAX_MESSAGE_BYTES",
            "SERVICE_NAME",
            "BlockingSeriesWriter",
            "Chunk",
            "InfluxConfig",
            "InfluxStore",
            "ParquetStore",
            "ReadQuery",
            "ResultsClient",
            "ResultsConfig",
            "Series",
            "SeriesData",
            "SeriesHandle",
            "SeriesKey",
            "SeriesStore",
            "SeriesSummary",
            "SeriesWriter",
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
