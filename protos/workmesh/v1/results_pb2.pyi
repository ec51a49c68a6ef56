from workmesh.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TimeUnit(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIME_UNIT_UNSPECIFIED: _ClassVar[TimeUnit]
    TIME_UNIT_SECONDS: _ClassVar[TimeUnit]
    TIME_UNIT_MILLISECONDS: _ClassVar[TimeUnit]
    TIME_UNIT_MICROSECONDS: _ClassVar[TimeUnit]
    TIME_UNIT_NANOSECONDS: _ClassVar[TimeUnit]

class Aggregate(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGGREGATE_UNSPECIFIED: _ClassVar[Aggregate]
    AGGREGATE_MEAN: _ClassVar[Aggregate]
    AGGREGATE_MIN: _ClassVar[Aggregate]
    AGGREGATE_MAX: _ClassVar[Aggregate]
    AGGREGATE_LAST: _ClassVar[Aggregate]
TIME_UNIT_UNSPECIFIED: TimeUnit
TIME_UNIT_SECONDS: TimeUnit
TIME_UNIT_MILLISECONDS: TimeUnit
TIME_UNIT_MICROSECONDS: TimeUnit
TIME_UNIT_NANOSECONDS: TimeUnit
AGGREGATE_UNSPECIFIED: Aggregate
AGGREGATE_MEAN: Aggregate
AGGREGATE_MIN: Aggregate
AGGREGATE_MAX: Aggregate
AGGREGATE_LAST: Aggregate

class SeriesKey(_message.Message):
    __slots__ = ("job_id", "measurement", "tags")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    MEASUREMENT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    measurement: str
    tags: _containers.ScalarMap[str, str]
    def __init__(self, job_id: _Optional[str] = ..., measurement: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ...) -> None: ...

class FieldColumn(_message.Message):
    __slots__ = ("name", "values", "unit")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    name: str
    values: bytes
    unit: str
    def __init__(self, name: _Optional[str] = ..., values: _Optional[bytes] = ..., unit: _Optional[str] = ...) -> None: ...

class SeriesChunk(_message.Message):
    __slots__ = ("key", "time_unit", "timestamps", "fields", "time_start", "time_step")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TIME_UNIT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMPS_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    TIME_START_FIELD_NUMBER: _ClassVar[int]
    TIME_STEP_FIELD_NUMBER: _ClassVar[int]
    key: SeriesKey
    time_unit: TimeUnit
    timestamps: bytes
    fields: _containers.RepeatedCompositeFieldContainer[FieldColumn]
    time_start: int
    time_step: int
    def __init__(self, key: _Optional[_Union[SeriesKey, _Mapping]] = ..., time_unit: _Optional[_Union[TimeUnit, str]] = ..., timestamps: _Optional[bytes] = ..., fields: _Optional[_Iterable[_Union[FieldColumn, _Mapping]]] = ..., time_start: _Optional[int] = ..., time_step: _Optional[int] = ...) -> None: ...

class WriteSeriesRequest(_message.Message):
    __slots__ = ("chunk", "flush")
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    FLUSH_FIELD_NUMBER: _ClassVar[int]
    chunk: SeriesChunk
    flush: bool
    def __init__(self, chunk: _Optional[_Union[SeriesChunk, _Mapping]] = ..., flush: _Optional[bool] = ...) -> None: ...

class WriteSeriesResponse(_message.Message):
    __slots__ = ("acked_chunks", "values", "done", "series")
    ACKED_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    acked_chunks: int
    values: int
    done: bool
    series: _containers.RepeatedCompositeFieldContainer[_common_pb2.SeriesRef]
    def __init__(self, acked_chunks: _Optional[int] = ..., values: _Optional[int] = ..., done: _Optional[bool] = ..., series: _Optional[_Iterable[_Union[_common_pb2.SeriesRef, _Mapping]]] = ...) -> None: ...

class ReadSeriesRequest(_message.Message):
    __slots__ = ("job_ids", "measurement", "tags", "fields", "start", "end", "time_unit", "window", "aggregate", "packed", "local")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    MEASUREMENT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    TIME_UNIT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    AGGREGATE_FIELD_NUMBER: _ClassVar[int]
    PACKED_FIELD_NUMBER: _ClassVar[int]
    LOCAL_FIELD_NUMBER: _ClassVar[int]
    job_ids: _containers.RepeatedScalarFieldContainer[str]
    measurement: str
    tags: _containers.ScalarMap[str, str]
    fields: _containers.RepeatedScalarFieldContainer[str]
    start: int
    end: int
    time_unit: TimeUnit
    window: int
    aggregate: Aggregate
    packed: bool
    local: bool
    def __init__(self, job_ids: _Optional[_Iterable[str]] = ..., measurement: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., fields: _Optional[_Iterable[str]] = ..., start: _Optional[int] = ..., end: _Optional[int] = ..., time_unit: _Optional[_Union[TimeUnit, str]] = ..., window: _Optional[int] = ..., aggregate: _Optional[_Union[Aggregate, str]] = ..., packed: _Optional[bool] = ..., local: _Optional[bool] = ...) -> None: ...

class ReadSeriesResponse(_message.Message):
    __slots__ = ("chunks", "packed", "data", "local")
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    PACKED_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    LOCAL_FIELD_NUMBER: _ClassVar[int]
    chunks: _containers.RepeatedCompositeFieldContainer[SeriesChunk]
    packed: _containers.RepeatedCompositeFieldContainer[PackedSeries]
    data: bytes
    local: LocalRead
    def __init__(self, chunks: _Optional[_Iterable[_Union[SeriesChunk, _Mapping]]] = ..., packed: _Optional[_Iterable[_Union[PackedSeries, _Mapping]]] = ..., data: _Optional[bytes] = ..., local: _Optional[_Union[LocalRead, _Mapping]] = ...) -> None: ...

class LocalRead(_message.Message):
    __slots__ = ("socket", "ticket", "files", "series")
    SOCKET_FIELD_NUMBER: _ClassVar[int]
    TICKET_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    socket: str
    ticket: bytes
    files: int
    series: _containers.RepeatedCompositeFieldContainer[LocalSeries]
    def __init__(self, socket: _Optional[str] = ..., ticket: _Optional[bytes] = ..., files: _Optional[int] = ..., series: _Optional[_Iterable[_Union[LocalSeries, _Mapping]]] = ...) -> None: ...

class LocalSeries(_message.Message):
    __slots__ = ("key", "fields", "units", "time_start", "time_step", "count", "pieces")
    KEY_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    TIME_START_FIELD_NUMBER: _ClassVar[int]
    TIME_STEP_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    PIECES_FIELD_NUMBER: _ClassVar[int]
    key: SeriesKey
    fields: _containers.RepeatedScalarFieldContainer[str]
    units: _containers.RepeatedScalarFieldContainer[str]
    time_start: int
    time_step: int
    count: int
    pieces: _containers.RepeatedCompositeFieldContainer[LocalPiece]
    def __init__(self, key: _Optional[_Union[SeriesKey, _Mapping]] = ..., fields: _Optional[_Iterable[str]] = ..., units: _Optional[_Iterable[str]] = ..., time_start: _Optional[int] = ..., time_step: _Optional[int] = ..., count: _Optional[int] = ..., pieces: _Optional[_Iterable[_Union[LocalPiece, _Mapping]]] = ...) -> None: ...

class LocalPiece(_message.Message):
    __slots__ = ("file", "row", "count")
    FILE_FIELD_NUMBER: _ClassVar[int]
    ROW_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    file: int
    row: int
    count: int
    def __init__(self, file: _Optional[int] = ..., row: _Optional[int] = ..., count: _Optional[int] = ...) -> None: ...

class PackedSeries(_message.Message):
    __slots__ = ("key", "count", "time_start", "time_step", "fields", "units")
    KEY_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    TIME_START_FIELD_NUMBER: _ClassVar[int]
    TIME_STEP_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    key: SeriesKey
    count: int
    time_start: int
    time_step: int
    fields: _containers.RepeatedScalarFieldContainer[str]
    units: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, key: _Optional[_Union[SeriesKey, _Mapping]] = ..., count: _Optional[int] = ..., time_start: _Optional[int] = ..., time_step: _Optional[int] = ..., fields: _Optional[_Iterable[str]] = ..., units: _Optional[_Iterable[str]] = ...) -> None: ...

class ListSeriesRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class SeriesInfo(_message.Message):
    __slots__ = ("key", "fields", "count", "start", "end", "units")
    class UnitsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEY_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    key: SeriesKey
    fields: _containers.RepeatedScalarFieldContainer[str]
    count: int
    start: int
    end: int
    units: _containers.ScalarMap[str, str]
    def __init__(self, key: _Optional[_Union[SeriesKey, _Mapping]] = ..., fields: _Optional[_Iterable[str]] = ..., count: _Optional[int] = ..., start: _Optional[int] = ..., end: _Optional[int] = ..., units: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ListSeriesResponse(_message.Message):
    __slots__ = ("series",)
    SERIES_FIELD_NUMBER: _ClassVar[int]
    series: _containers.RepeatedCompositeFieldContainer[SeriesInfo]
    def __init__(self, series: _Optional[_Iterable[_Union[SeriesInfo, _Mapping]]] = ...) -> None: ...

class DeleteSeriesRequest(_message.Message):
    __slots__ = ("job_id", "restart")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    RESTART_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    restart: bool
    def __init__(self, job_id: _Optional[str] = ..., restart: _Optional[bool] = ...) -> None: ...

class DeleteSeriesResponse(_message.Message):
    __slots__ = ("series",)
    SERIES_FIELD_NUMBER: _ClassVar[int]
    series: int
    def __init__(self, series: _Optional[int] = ...) -> None: ...

class GrantReaderRequest(_message.Message):
    __slots__ = ("job_id", "reader", "ttl_seconds")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    READER_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    reader: str
    ttl_seconds: int
    def __init__(self, job_id: _Optional[str] = ..., reader: _Optional[str] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class GrantReaderResponse(_message.Message):
    __slots__ = ("store", "host", "database", "username", "password", "token", "expires_at")
    STORE_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    store: str
    host: str
    database: str
    username: str
    password: str
    token: str
    expires_at: int
    def __init__(self, store: _Optional[str] = ..., host: _Optional[str] = ..., database: _Optional[str] = ..., username: _Optional[str] = ..., password: _Optional[str] = ..., token: _Optional[str] = ..., expires_at: _Optional[int] = ...) -> None: ...

class RevokeReaderRequest(_message.Message):
    __slots__ = ("job_id", "reader")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    READER_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    reader: str
    def __init__(self, job_id: _Optional[str] = ..., reader: _Optional[str] = ...) -> None: ...

class RevokeReaderResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
