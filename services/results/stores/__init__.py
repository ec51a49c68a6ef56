"""Series stores behind the :class:`SeriesStore` protocol: Parquet files and InfluxDB."""
