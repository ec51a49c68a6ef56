import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ParamType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PARAM_TYPE_UNSPECIFIED: _ClassVar[ParamType]
    PARAM_TYPE_STRING: _ClassVar[ParamType]
    PARAM_TYPE_ENUM: _ClassVar[ParamType]
    PARAM_TYPE_BOOL: _ClassVar[ParamType]
    PARAM_TYPE_INT: _ClassVar[ParamType]
    PARAM_TYPE_FLOAT: _ClassVar[ParamType]
    PARAM_TYPE_DATETIME: _ClassVar[ParamType]
    PARAM_TYPE_DURATION: _ClassVar[ParamType]
    PARAM_TYPE_BYTES: _ClassVar[ParamType]

class ConstraintOp(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONSTRAINT_OP_UNSPECIFIED: _ClassVar[ConstraintOp]
    CONSTRAINT_OP_GREATER: _ClassVar[ConstraintOp]
    CONSTRAINT_OP_GREATER_EQUAL: _ClassVar[ConstraintOp]
    CONSTRAINT_OP_LESS: _ClassVar[ConstraintOp]
    CONSTRAINT_OP_LESS_EQUAL: _ClassVar[ConstraintOp]
    CONSTRAINT_OP_EQUAL: _ClassVar[ConstraintOp]

class JobStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATUS_UNSPECIFIED: _ClassVar[JobStatus]
    JOB_STATUS_QUEUED: _ClassVar[JobStatus]
    JOB_STATUS_DISPATCHED: _ClassVar[JobStatus]
    JOB_STATUS_RUNNING: _ClassVar[JobStatus]
    JOB_STATUS_SUCCEEDED: _ClassVar[JobStatus]
    JOB_STATUS_FAILED: _ClassVar[JobStatus]
    JOB_STATUS_CANCELLED: _ClassVar[JobStatus]
    JOB_STATUS_TIMED_OUT: _ClassVar[JobStatus]

class LogLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOG_LEVEL_UNSPECIFIED: _ClassVar[LogLevel]
    LOG_LEVEL_DEBUG: _ClassVar[LogLevel]
    LOG_LEVEL_INFO: _ClassVar[LogLevel]
    LOG_LEVEL_WARNING: _ClassVar[LogLevel]
    LOG_LEVEL_ERROR: _ClassVar[LogLevel]
PARAM_TYPE_UNSPECIFIED: ParamType
PARAM_TYPE_STRING: ParamType
PARAM_TYPE_ENUM: ParamType
PARAM_TYPE_BOOL: ParamType
PARAM_TYPE_INT: ParamType
PARAM_TYPE_FLOAT: ParamType
PARAM_TYPE_DATETIME: ParamType
PARAM_TYPE_DURATION: ParamType
PARAM_TYPE_BYTES: ParamType
CONSTRAINT_OP_UNSPECIFIED: ConstraintOp
CONSTRAINT_OP_GREATER: ConstraintOp
CONSTRAINT_OP_GREATER_EQUAL: ConstraintOp
CONSTRAINT_OP_LESS: ConstraintOp
CONSTRAINT_OP_LESS_EQUAL: ConstraintOp
CONSTRAINT_OP_EQUAL: ConstraintOp
JOB_STATUS_UNSPECIFIED: JobStatus
JOB_STATUS_QUEUED: JobStatus
JOB_STATUS_DISPATCHED: JobStatus
JOB_STATUS_RUNNING: JobStatus
JOB_STATUS_SUCCEEDED: JobStatus
JOB_STATUS_FAILED: JobStatus
JOB_STATUS_CANCELLED: JobStatus
JOB_STATUS_TIMED_OUT: JobStatus
LOG_LEVEL_UNSPECIFIED: LogLevel
LOG_LEVEL_DEBUG: LogLevel
LOG_LEVEL_INFO: LogLevel
LOG_LEVEL_WARNING: LogLevel
LOG_LEVEL_ERROR: LogLevel

class ParamValue(_message.Message):
    __slots__ = ("string_value", "bool_value", "int_value", "float_value", "datetime_value", "duration_value", "bytes_value")
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    FLOAT_VALUE_FIELD_NUMBER: _ClassVar[int]
    DATETIME_VALUE_FIELD_NUMBER: _ClassVar[int]
    DURATION_VALUE_FIELD_NUMBER: _ClassVar[int]
    BYTES_VALUE_FIELD_NUMBER: _ClassVar[int]
    string_value: str
    bool_value: bool
    int_value: int
    float_value: float
    datetime_value: _timestamp_pb2.Timestamp
    duration_value: _duration_pb2.Duration
    bytes_value: bytes
    def __init__(self, string_value: _Optional[str] = ..., bool_value: _Optional[bool] = ..., int_value: _Optional[int] = ..., float_value: _Optional[float] = ..., datetime_value: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., duration_value: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., bytes_value: _Optional[bytes] = ...) -> None: ...

class ParamSpec(_message.Message):
    __slots__ = ("name", "type", "description", "required", "default", "min", "max", "allowed", "unit", "constraints")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: ParamType
    description: str
    required: bool
    default: ParamValue
    min: float
    max: float
    allowed: _containers.RepeatedScalarFieldContainer[str]
    unit: str
    constraints: _containers.RepeatedCompositeFieldContainer[ParamConstraint]
    def __init__(self, name: _Optional[str] = ..., type: _Optional[_Union[ParamType, str]] = ..., description: _Optional[str] = ..., required: _Optional[bool] = ..., default: _Optional[_Union[ParamValue, _Mapping]] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., allowed: _Optional[_Iterable[str]] = ..., unit: _Optional[str] = ..., constraints: _Optional[_Iterable[_Union[ParamConstraint, _Mapping]]] = ...) -> None: ...

class ParamConstraint(_message.Message):
    __slots__ = ("op", "other")
    OP_FIELD_NUMBER: _ClassVar[int]
    OTHER_FIELD_NUMBER: _ClassVar[int]
    op: ConstraintOp
    other: str
    def __init__(self, op: _Optional[_Union[ConstraintOp, str]] = ..., other: _Optional[str] = ...) -> None: ...

class WorkflowType(_message.Message):
    __slots__ = ("name", "version", "description", "params", "default_timeout", "max_attempts")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    description: str
    params: _containers.RepeatedCompositeFieldContainer[ParamSpec]
    default_timeout: _duration_pb2.Duration
    max_attempts: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., description: _Optional[str] = ..., params: _Optional[_Iterable[_Union[ParamSpec, _Mapping]]] = ..., default_timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_attempts: _Optional[int] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("fraction", "message")
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    fraction: float
    message: str
    def __init__(self, fraction: _Optional[float] = ..., message: _Optional[str] = ...) -> None: ...

class LogLine(_message.Message):
    __slots__ = ("level", "message", "fields")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    level: LogLevel
    message: str
    fields: _containers.ScalarMap[str, str]
    def __init__(self, level: _Optional[_Union[LogLevel, str]] = ..., message: _Optional[str] = ..., fields: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SeriesRef(_message.Message):
    __slots__ = ("store", "host", "database", "measurement", "field", "tags", "count", "unit", "job_id")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    STORE_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    MEASUREMENT_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    store: str
    host: str
    database: str
    measurement: str
    field: str
    tags: _containers.ScalarMap[str, str]
    count: int
    unit: str
    job_id: str
    def __init__(self, store: _Optional[str] = ..., host: _Optional[str] = ..., database: _Optional[str] = ..., measurement: _Optional[str] = ..., field: _Optional[str] = ..., tags: _Optional[_Mapping[str, str]] = ..., count: _Optional[int] = ..., unit: _Optional[str] = ..., job_id: _Optional[str] = ...) -> None: ...

class JobResult(_message.Message):
    __slots__ = ("outputs", "data", "series")
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    outputs: _struct_pb2.Struct
    data: bytes
    series: _containers.RepeatedCompositeFieldContainer[SeriesRef]
    def __init__(self, outputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., data: _Optional[bytes] = ..., series: _Optional[_Iterable[_Union[SeriesRef, _Mapping]]] = ...) -> None: ...

class JobError(_message.Message):
    __slots__ = ("code", "message", "retryable")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    retryable: bool
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., retryable: _Optional[bool] = ...) -> None: ...

class StatusChange(_message.Message):
    __slots__ = ("status", "reason", "attempt", "instance_id")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    status: JobStatus
    reason: str
    attempt: int
    instance_id: str
    def __init__(self, status: _Optional[_Union[JobStatus, str]] = ..., reason: _Optional[str] = ..., attempt: _Optional[int] = ..., instance_id: _Optional[str] = ...) -> None: ...

class JobEvent(_message.Message):
    __slots__ = ("seq", "time", "status", "progress", "log", "result", "error", "notification", "queue", "step", "batch")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    seq: int
    time: _timestamp_pb2.Timestamp
    status: StatusChange
    progress: Progress
    log: LogLine
    result: JobResult
    error: JobError
    notification: NotificationOutcome
    queue: QueuePlace
    step: StepEvent
    batch: _containers.RepeatedCompositeFieldContainer[JobEvent]
    def __init__(self, seq: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[_Union[StatusChange, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., log: _Optional[_Union[LogLine, _Mapping]] = ..., result: _Optional[_Union[JobResult, _Mapping]] = ..., error: _Optional[_Union[JobError, _Mapping]] = ..., notification: _Optional[_Union[NotificationOutcome, _Mapping]] = ..., queue: _Optional[_Union[QueuePlace, _Mapping]] = ..., step: _Optional[_Union[StepEvent, _Mapping]] = ..., batch: _Optional[_Iterable[_Union[JobEvent, _Mapping]]] = ...) -> None: ...

class StepEvent(_message.Message):
    __slots__ = ("kind", "step_name", "child_job_id", "workflow_type", "child_status", "message")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[StepEvent.Kind]
        KIND_STARTED: _ClassVar[StepEvent.Kind]
        KIND_SUCCEEDED: _ClassVar[StepEvent.Kind]
        KIND_FAILED: _ClassVar[StepEvent.Kind]
    KIND_UNSPECIFIED: StepEvent.Kind
    KIND_STARTED: StepEvent.Kind
    KIND_SUCCEEDED: StepEvent.Kind
    KIND_FAILED: StepEvent.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    STEP_NAME_FIELD_NUMBER: _ClassVar[int]
    CHILD_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_TYPE_FIELD_NUMBER: _ClassVar[int]
    CHILD_STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    kind: StepEvent.Kind
    step_name: str
    child_job_id: str
    workflow_type: str
    child_status: JobStatus
    message: str
    def __init__(self, kind: _Optional[_Union[StepEvent.Kind, str]] = ..., step_name: _Optional[str] = ..., child_job_id: _Optional[str] = ..., workflow_type: _Optional[str] = ..., child_status: _Optional[_Union[JobStatus, str]] = ..., message: _Optional[str] = ...) -> None: ...

class QueuePlace(_message.Message):
    __slots__ = ("position", "queued", "expected_start", "waiting")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_START_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    position: int
    queued: int
    expected_start: _timestamp_pb2.Timestamp
    waiting: str
    def __init__(self, position: _Optional[int] = ..., queued: _Optional[int] = ..., expected_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., waiting: _Optional[str] = ...) -> None: ...

class Notify(_message.Message):
    __slots__ = ("webhooks", "emails")
    WEBHOOKS_FIELD_NUMBER: _ClassVar[int]
    EMAILS_FIELD_NUMBER: _ClassVar[int]
    webhooks: _containers.RepeatedScalarFieldContainer[str]
    emails: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, webhooks: _Optional[_Iterable[str]] = ..., emails: _Optional[_Iterable[str]] = ...) -> None: ...

class NotificationOutcome(_message.Message):
    __slots__ = ("channel", "target", "delivered", "attempts", "detail", "delivery_id")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_ID_FIELD_NUMBER: _ClassVar[int]
    channel: str
    target: str
    delivered: bool
    attempts: int
    detail: str
    delivery_id: str
    def __init__(self, channel: _Optional[str] = ..., target: _Optional[str] = ..., delivered: _Optional[bool] = ..., attempts: _Optional[int] = ..., detail: _Optional[str] = ..., delivery_id: _Optional[str] = ...) -> None: ...
