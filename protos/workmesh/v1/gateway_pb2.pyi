import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from workmesh.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WorkflowTypeInfo(_message.Message):
    __slots__ = ("type", "healthy_instances", "capacity", "free_capacity")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_INSTANCES_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    FREE_CAPACITY_FIELD_NUMBER: _ClassVar[int]
    type: _common_pb2.WorkflowType
    healthy_instances: int
    capacity: int
    free_capacity: int
    def __init__(self, type: _Optional[_Union[_common_pb2.WorkflowType, _Mapping]] = ..., healthy_instances: _Optional[int] = ..., capacity: _Optional[int] = ..., free_capacity: _Optional[int] = ...) -> None: ...

class ListWorkflowTypesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListWorkflowTypesResponse(_message.Message):
    __slots__ = ("types",)
    TYPES_FIELD_NUMBER: _ClassVar[int]
    types: _containers.RepeatedCompositeFieldContainer[WorkflowTypeInfo]
    def __init__(self, types: _Optional[_Iterable[_Union[WorkflowTypeInfo, _Mapping]]] = ...) -> None: ...

class WatchWorkflowTypesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WorkflowTypeChange(_message.Message):
    __slots__ = ("kind", "type", "initial")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[WorkflowTypeChange.Kind]
        KIND_ADDED: _ClassVar[WorkflowTypeChange.Kind]
        KIND_REMOVED: _ClassVar[WorkflowTypeChange.Kind]
        KIND_UPDATED: _ClassVar[WorkflowTypeChange.Kind]
    KIND_UNSPECIFIED: WorkflowTypeChange.Kind
    KIND_ADDED: WorkflowTypeChange.Kind
    KIND_REMOVED: WorkflowTypeChange.Kind
    KIND_UPDATED: WorkflowTypeChange.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    INITIAL_FIELD_NUMBER: _ClassVar[int]
    kind: WorkflowTypeChange.Kind
    type: WorkflowTypeInfo
    initial: bool
    def __init__(self, kind: _Optional[_Union[WorkflowTypeChange.Kind, str]] = ..., type: _Optional[_Union[WorkflowTypeInfo, _Mapping]] = ..., initial: _Optional[bool] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("workflow_type", "params", "idempotency_key", "timeout", "labels")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _common_pb2.ParamValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_common_pb2.ParamValue, _Mapping]] = ...) -> None: ...
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    WORKFLOW_TYPE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    workflow_type: str
    params: _containers.MessageMap[str, _common_pb2.ParamValue]
    idempotency_key: str
    timeout: _duration_pb2.Duration
    labels: _containers.ScalarMap[str, str]
    def __init__(self, workflow_type: _Optional[str] = ..., params: _Optional[_Mapping[str, _common_pb2.ParamValue]] = ..., idempotency_key: _Optional[str] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SubmitJobResponse(_message.Message):
    __slots__ = ("job", "existing")
    JOB_FIELD_NUMBER: _ClassVar[int]
    EXISTING_FIELD_NUMBER: _ClassVar[int]
    job: Job
    existing: bool
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ..., existing: _Optional[bool] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "workflow_type", "params", "status", "created_at", "updated_at", "started_at", "finished_at", "progress", "attempts", "result", "error", "last_seq", "trace_id", "labels", "instance_id")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _common_pb2.ParamValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_common_pb2.ParamValue, _Mapping]] = ...) -> None: ...
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_TYPE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQ_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    workflow_type: str
    params: _containers.MessageMap[str, _common_pb2.ParamValue]
    status: _common_pb2.JobStatus
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    progress: _common_pb2.Progress
    attempts: int
    result: _common_pb2.JobResult
    error: _common_pb2.JobError
    last_seq: int
    trace_id: str
    labels: _containers.ScalarMap[str, str]
    instance_id: str
    def __init__(self, job_id: _Optional[str] = ..., workflow_type: _Optional[str] = ..., params: _Optional[_Mapping[str, _common_pb2.ParamValue]] = ..., status: _Optional[_Union[_common_pb2.JobStatus, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., progress: _Optional[_Union[_common_pb2.Progress, _Mapping]] = ..., attempts: _Optional[int] = ..., result: _Optional[_Union[_common_pb2.JobResult, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.JobError, _Mapping]] = ..., last_seq: _Optional[int] = ..., trace_id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., instance_id: _Optional[str] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id", "after_seq")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    after_seq: int
    def __init__(self, job_id: _Optional[str] = ..., after_seq: _Optional[int] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("workflow_type", "statuses", "page_size", "page_token")
    WORKFLOW_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    workflow_type: str
    statuses: _containers.RepeatedScalarFieldContainer[_common_pb2.JobStatus]
    page_size: int
    page_token: str
    def __init__(self, workflow_type: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[_common_pb2.JobStatus, str]]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id", "reason")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    reason: str
    def __init__(self, job_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class DeleteJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class DeleteJobResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RunJobsItem(_message.Message):
    __slots__ = ("ref", "job")
    REF_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    ref: str
    job: SubmitJobRequest
    def __init__(self, ref: _Optional[str] = ..., job: _Optional[_Union[SubmitJobRequest, _Mapping]] = ...) -> None: ...

class RunJobsRequest(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[RunJobsItem]
    def __init__(self, jobs: _Optional[_Iterable[_Union[RunJobsItem, _Mapping]]] = ...) -> None: ...

class RunJobsError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class RunJobsUpdate(_message.Message):
    __slots__ = ("ref", "job_id", "submitted", "event", "error")
    REF_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ref: str
    job_id: str
    submitted: SubmitJobResponse
    event: _common_pb2.JobEvent
    error: RunJobsError
    def __init__(self, ref: _Optional[str] = ..., job_id: _Optional[str] = ..., submitted: _Optional[_Union[SubmitJobResponse, _Mapping]] = ..., event: _Optional[_Union[_common_pb2.JobEvent, _Mapping]] = ..., error: _Optional[_Union[RunJobsError, _Mapping]] = ...) -> None: ...

class RunJobsReply(_message.Message):
    __slots__ = ("updates",)
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    updates: _containers.RepeatedCompositeFieldContainer[RunJobsUpdate]
    def __init__(self, updates: _Optional[_Iterable[_Union[RunJobsUpdate, _Mapping]]] = ...) -> None: ...
