"""The results server: health, reflection, configuration, and serve() as a real process."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.results.support import HOUR, new_job, serving
from tests.support import eventually_async, free_port, run
from workmesh.registry import EmbeddedRegistry, RegistryConfig, find_service
from workmesh.services.clients import ResultsClient
from workmesh.services.core.errors import InvalidArgument
from workmesh.services.results import InfluxConfig, ParquetStore, ResultsConfig

SERVE = (
    "import asyncio; from workmesh.services.results import ResultsConfig, serve; "
    "asyncio.run(serve(ResultsConfig.from_env()))"
)


def test_health_and_reflection(tmp_path):
    async def scenario():
        async with serving(ParquetStore(tmp_path)) as client:
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{client.port}")
            try:
                reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
                replies = [
                    r
                    async for r in reflect.ServerReflectionInfo(
                        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
                    )
                ]
                names = {s.name for s in replies[0].list_services_response.service}
                assert {"workmesh.v1.Results", "grpc.health.v1.Health"} <= names
                # the overall status is SERVING from the start; serve() adds the named services
                reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
            finally:
                await channel.close()

    run(scenario())


def test_config_from_env(tmp_path):
    config = ResultsConfig.from_env(
        {
            "WORKMESH_RESULTS_ADDR": "0.0.0.0:6000",
            "WORKMESH_RESULTS_STORE": "influx",
            "WORKMESH_DATA_DIR": str(tmp_path),
            "INFLUX_URL": "http://influx:8086/",
            "INFLUX_WRITERS": "8",
            "INFLUX_DB_PREFIX": "wm_",
            "CONSUL_HTTP_ADDR": "http://consul:8500",
        }
    )
    assert config.listen == "0.0.0.0:6000" and config.host == "127.0.0.1"
    assert config.store == "influx" and config.data_dir == tmp_path / "series"
    assert (config.influx.url, config.influx.writers, config.influx.db_prefix) == ("http://influx:8086", 8, "wm_")
    assert config.registry.address == "consul:8500"
    assert config.with_listen("127.0.0.1:7").with_store("parquet").listen == "127.0.0.1:7"
    with pytest.raises(InvalidArgument, match="store: must be one of parquet, influx"):
        ResultsConfig(store="mongo")
    with pytest.raises(InvalidArgument, match="INFLUX_BATCH_LINES: must be at least 5000"):
        InfluxConfig(batch_lines=100)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INFLUX_BATCH_LINES": "100"}, "INFLUX_BATCH_LINES='100': must be an integer, at least 5000"),
        ({"INFLUX_WRITERS": "four"}, "INFLUX_WRITERS='four': must be an integer, at least 1"),
        ({"WORKMESH_RESULTS_BATCH_VALUES": "8M"}, "WORKMESH_RESULTS_BATCH_VALUES='8M': must be an integer, at least 1"),
        ({"WORKMESH_RESULTS_COMPACTION_DELAY": "soon"}, "WORKMESH_RESULTS_COMPACTION_DELAY='soon': must be a duration"),
        ({"WORKMESH_RESULTS_STORE": "mongo"}, "WORKMESH_RESULTS_STORE='mongo': must be one of parquet, influx"),
        ({"WORKMESH_RESULTS_ADDR": "nowhere"}, "WORKMESH_RESULTS_ADDR='nowhere': must be host:port"),
    ],
)
def test_bad_env_names_the_variable_and_the_rule(env, message):
    # Regression (issue 8): numbers were read with a bare int(), whose error names neither.
    with pytest.raises(ValueError) as info:
        ResultsConfig.from_env(env)
    assert message in str(info.value)


def test_env_durations_and_choices():
    config = ResultsConfig.from_env(
        {"WORKMESH_RESULTS_COMPACTION_DELAY": "1m30s", "WORKMESH_RESULTS_COMPRESSION": "ZSTD", "INFLUX_GZIP": "Off"}
    )
    assert (config.compaction_delay, config.compression, config.influx.gzip) == (90.0, "zstd", "off")
    assert ResultsConfig.from_env({"WORKMESH_RESULTS_COMPACTION_DELAY": "-1"}).compaction_delay == -1.0


def test_serve_registers_and_stops_gracefully(procs, tmp_path):
    async def scenario():
        registry = EmbeddedRegistry("127.0.0.1", 0)
        await registry.start()
        try:
            port = free_port()
            proc = procs.start(
                "-c",
                SERVE,
                name="results",
                env={
                    "CONSUL_HTTP_ADDR": registry.address,
                    "WORKMESH_RESULTS_ADDR": f"127.0.0.1:{port}",
                    "WORKMESH_RESULTS_DIR": str(tmp_path / "series"),
                },
            )
            config = RegistryConfig(address=registry.address)
            instances = await eventually_async(lambda: find_service(config, "workmesh-results"), timeout=30)
            found = instances[0]
            assert (found.address, found.port, found.meta["store"]) == ("127.0.0.1", port, "parquet")

            job = new_job()
            async with await ResultsClient.from_registry(config) as client:  # as a worker finds it
                assert client.address == f"127.0.0.1:{port}"
                refs = await client.write(job, "heat", np.arange(3) * HOUR, Q=[1.0, 2.0, 3.0])
                assert refs[0].host == f"127.0.0.1:{port}" and refs[0].store == "parquet"
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service="workmesh-results")
                )
                assert reply.status == health_pb2.HealthCheckResponse.SERVING

            assert await asyncio.to_thread(procs.stop, proc, signal.SIGTERM) == 0
            assert not await find_service(config, "workmesh-results")
            log = procs.log_of(proc)
            assert "results service listening" in log and "results service stopped" in log
            assert (Path(tmp_path) / "series" / job / "_catalog.json").exists()
        finally:
            await registry.stop()

    run(scenario())
