import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from workmesh.v1 import common_pb2 as _common_pb2
from workmesh.v1 import results_pb2 as _results_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunStepRequest(_message.Message):
    __slots__ = ("parent_job_id", "parent_attempt", "step_name", "workflow_type", "params", "weight", "call_id", "cancel")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _common_pb2.ParamValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_common_pb2.ParamValue, _Mapping]] = ...) -> None: ...
    PARENT_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PARENT_ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STEP_NAME_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_TYPE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    parent_job_id: str
    parent_attempt: int
    step_name: str
    workflow_type: str
    params: _containers.MessageMap[str, _common_pb2.ParamValue]
    weight: float
    call_id: int
    cancel: bool
    def __init__(self, parent_job_id: _Optional[str] = ..., parent_attempt: _Optional[int] = ..., step_name: _Optional[str] = ..., workflow_type: _Optional[str] = ..., params: _Optional[_Mapping[str, _common_pb2.ParamValue]] = ..., weight: _Optional[float] = ..., call_id: _Optional[int] = ..., cancel: _Optional[bool] = ...) -> None: ...

class RunStepResponse(_message.Message):
    __slots__ = ("job", "reused")
    JOB_FIELD_NUMBER: _ClassVar[int]
    REUSED_FIELD_NUMBER: _ClassVar[int]
    job: Job
    reused: bool
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ..., reused: _Optional[bool] = ...) -> None: ...

class RunStepReply(_message.Message):
    __slots__ = ("call_id", "response", "status_code", "status_message")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    call_id: int
    response: RunStepResponse
    status_code: int
    status_message: str
    def __init__(self, call_id: _Optional[int] = ..., response: _Optional[_Union[RunStepResponse, _Mapping]] = ..., status_code: _Optional[int] = ..., status_message: _Optional[str] = ...) -> None: ...

class WorkflowTypeInfo(_message.Message):
    __slots__ = ("type", "healthy_instances", "capacity", "free_capacity", "instances", "typical_runtime", "runtime_runs", "versions")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_INSTANCES_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    FREE_CAPACITY_FIELD_NUMBER: _ClassVar[int]
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    TYPICAL_RUNTIME_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_RUNS_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    type: _common_pb2.WorkflowType
    healthy_instances: int
    capacity: int
    free_capacity: int
    instances: _containers.RepeatedCompositeFieldContainer[InstanceInfo]
    typical_runtime: _duration_pb2.Duration
    runtime_runs: int
    versions: _containers.RepeatedCompositeFieldContainer[TypeVersionInfo]
    def __init__(self, type: _Optional[_Union[_common_pb2.WorkflowType, _Mapping]] = ..., healthy_instances: _Optional[int] = ..., capacity: _Optional[int] = ..., free_capacity: _Optional[int] = ..., instances: _Optional[_Iterable[_Union[InstanceInfo, _Mapping]]] = ..., typical_runtime: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., runtime_runs: _Optional[int] = ..., versions: _Optional[_Iterable[_Union[TypeVersionInfo, _Mapping]]] = ...) -> None: ...

class TypeVersionInfo(_message.Message):
    __slots__ = ("version", "type", "healthy_instances", "capacity", "free_capacity", "addresses")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_INSTANCES_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    FREE_CAPACITY_FIELD_NUMBER: _ClassVar[int]
    ADDRESSES_FIELD_NUMBER: _ClassVar[int]
    version: str
    type: _common_pb2.WorkflowType
    healthy_instances: int
    capacity: int
    free_capacity: int
    addresses: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, version: _Optional[str] = ..., type: _Optional[_Union[_common_pb2.WorkflowType, _Mapping]] = ..., healthy_instances: _Optional[int] = ..., capacity: _Optional[int] = ..., free_capacity: _Optional[int] = ..., addresses: _Optional[_Iterable[str]] = ...) -> None: ...

class InstanceInfo(_message.Message):
    __slots__ = ("address", "instance_id", "version", "capacity", "in_flight", "healthy", "checks")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    address: str
    instance_id: str
    version: str
    capacity: int
    in_flight: int
    healthy: bool
    checks: _containers.RepeatedCompositeFieldContainer[InstanceCheck]
    def __init__(self, address: _Optional[str] = ..., instance_id: _Optional[str] = ..., version: _Optional[str] = ..., capacity: _Optional[int] = ..., in_flight: _Optional[int] = ..., healthy: _Optional[bool] = ..., checks: _Optional[_Iterable[_Union[InstanceCheck, _Mapping]]] = ...) -> None: ...

class InstanceCheck(_message.Message):
    __slots__ = ("service_id", "name", "status", "output")
    SERVICE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    service_id: str
    name: str
    status: str
    output: str
    def __init__(self, service_id: _Optional[str] = ..., name: _Optional[str] = ..., status: _Optional[str] = ..., output: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("workflow_type", "params", "idempotency_key", "timeout", "labels", "tenant", "user", "priority", "notify", "version")
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
    TENANT_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    NOTIFY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    workflow_type: str
    params: _containers.MessageMap[str, _common_pb2.ParamValue]
    idempotency_key: str
    timeout: _duration_pb2.Duration
    labels: _containers.ScalarMap[str, str]
    tenant: str
    user: str
    priority: str
    notify: _common_pb2.Notify
    version: str
    def __init__(self, workflow_type: _Optional[str] = ..., params: _Optional[_Mapping[str, _common_pb2.ParamValue]] = ..., idempotency_key: _Optional[str] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., labels: _Optional[_Mapping[str, str]] = ..., tenant: _Optional[str] = ..., user: _Optional[str] = ..., priority: _Optional[str] = ..., notify: _Optional[_Union[_common_pb2.Notify, _Mapping]] = ..., version: _Optional[str] = ...) -> None: ...

class SubmitJobResponse(_message.Message):
    __slots__ = ("job", "existing")
    JOB_FIELD_NUMBER: _ClassVar[int]
    EXISTING_FIELD_NUMBER: _ClassVar[int]
    job: Job
    existing: bool
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ..., existing: _Optional[bool] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "workflow_type", "params", "status", "created_at", "updated_at", "started_at", "finished_at", "progress", "attempts", "result", "error", "last_seq", "trace_id", "labels", "instance_id", "omitted_params", "tenant", "user", "priority", "queue", "parent_id", "step_name", "version", "attempt_history")
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
    OMITTED_PARAMS_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_HISTORY_FIELD_NUMBER: _ClassVar[int]
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
    omitted_params: _containers.RepeatedScalarFieldContainer[str]
    tenant: str
    user: str
    priority: int
    queue: _common_pb2.QueuePlace
    parent_id: str
    step_name: str
    version: str
    attempt_history: _containers.RepeatedCompositeFieldContainer[JobAttempt]
    def __init__(self, job_id: _Optional[str] = ..., workflow_type: _Optional[str] = ..., params: _Optional[_Mapping[str, _common_pb2.ParamValue]] = ..., status: _Optional[_Union[_common_pb2.JobStatus, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., progress: _Optional[_Union[_common_pb2.Progress, _Mapping]] = ..., attempts: _Optional[int] = ..., result: _Optional[_Union[_common_pb2.JobResult, _Mapping]] = ..., error: _Optional[_Union[_common_pb2.JobError, _Mapping]] = ..., last_seq: _Optional[int] = ..., trace_id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., instance_id: _Optional[str] = ..., omitted_params: _Optional[_Iterable[str]] = ..., tenant: _Optional[str] = ..., user: _Optional[str] = ..., priority: _Optional[int] = ..., queue: _Optional[_Union[_common_pb2.QueuePlace, _Mapping]] = ..., parent_id: _Optional[str] = ..., step_name: _Optional[str] = ..., version: _Optional[str] = ..., attempt_history: _Optional[_Iterable[_Union[JobAttempt, _Mapping]]] = ...) -> None: ...

class JobAttempt(_message.Message):
    __slots__ = ("attempt", "instance_id", "started_at", "ended_at", "outcome", "reason")
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    instance_id: str
    started_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    outcome: str
    reason: str
    def __init__(self, attempt: _Optional[int] = ..., instance_id: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., outcome: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class EstimateJobRequest(_message.Message):
    __slots__ = ("workflow_type", "version", "params", "tenant", "user", "priority")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _common_pb2.ParamValue
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_common_pb2.ParamValue, _Mapping]] = ...) -> None: ...
    WORKFLOW_TYPE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    workflow_type: str
    version: str
    params: _containers.MessageMap[str, _common_pb2.ParamValue]
    tenant: str
    user: str
    priority: str
    def __init__(self, workflow_type: _Optional[str] = ..., version: _Optional[str] = ..., params: _Optional[_Mapping[str, _common_pb2.ParamValue]] = ..., tenant: _Optional[str] = ..., user: _Optional[str] = ..., priority: _Optional[str] = ...) -> None: ...

class EstimateJobResponse(_message.Message):
    __slots__ = ("workflow_type", "version", "runtime_p50", "runtime_p90", "runs", "basis", "reason", "expected_start", "expected_finish", "queue_position")
    WORKFLOW_TYPE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_P50_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_P90_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    BASIS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_START_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FINISH_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    workflow_type: str
    version: str
    runtime_p50: _duration_pb2.Duration
    runtime_p90: _duration_pb2.Duration
    runs: int
    basis: str
    reason: str
    expected_start: _timestamp_pb2.Timestamp
    expected_finish: _timestamp_pb2.Timestamp
    queue_position: int
    def __init__(self, workflow_type: _Optional[str] = ..., version: _Optional[str] = ..., runtime_p50: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., runtime_p90: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., runs: _Optional[int] = ..., basis: _Optional[str] = ..., reason: _Optional[str] = ..., expected_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expected_finish: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., queue_position: _Optional[int] = ...) -> None: ...

class RetryJobRequest(_message.Message):
    __slots__ = ("job_id", "idempotency_key")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    idempotency_key: str
    def __init__(self, job_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class GetQueueRequest(_message.Message):
    __slots__ = ("workflow_type",)
    WORKFLOW_TYPE_FIELD_NUMBER: _ClassVar[int]
    workflow_type: str
    def __init__(self, workflow_type: _Optional[str] = ...) -> None: ...

class OwnerQueue(_message.Message):
    __slots__ = ("tenant", "user", "queued", "running", "weight", "tenant_weight", "user_weight", "usage_seconds", "share")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    TENANT_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    USER_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    USAGE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    user: str
    queued: int
    running: int
    weight: float
    tenant_weight: float
    user_weight: float
    usage_seconds: float
    share: float
    def __init__(self, tenant: _Optional[str] = ..., user: _Optional[str] = ..., queued: _Optional[int] = ..., running: _Optional[int] = ..., weight: _Optional[float] = ..., tenant_weight: _Optional[float] = ..., user_weight: _Optional[float] = ..., usage_seconds: _Optional[float] = ..., share: _Optional[float] = ...) -> None: ...

class TypeQueue(_message.Message):
    __slots__ = ("workflow_type", "capacity", "queued", "running", "owners")
    WORKFLOW_TYPE_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    OWNERS_FIELD_NUMBER: _ClassVar[int]
    workflow_type: str
    capacity: int
    queued: int
    running: int
    owners: _containers.RepeatedCompositeFieldContainer[OwnerQueue]
    def __init__(self, workflow_type: _Optional[str] = ..., capacity: _Optional[int] = ..., queued: _Optional[int] = ..., running: _Optional[int] = ..., owners: _Optional[_Iterable[_Union[OwnerQueue, _Mapping]]] = ...) -> None: ...

class GetQueueResponse(_message.Message):
    __slots__ = ("policy", "half_life_seconds", "types", "owners")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    HALF_LIFE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TYPES_FIELD_NUMBER: _ClassVar[int]
    OWNERS_FIELD_NUMBER: _ClassVar[int]
    policy: str
    half_life_seconds: float
    types: _containers.RepeatedCompositeFieldContainer[TypeQueue]
    owners: _containers.RepeatedCompositeFieldContainer[OwnerQueue]
    def __init__(self, policy: _Optional[str] = ..., half_life_seconds: _Optional[float] = ..., types: _Optional[_Iterable[_Union[TypeQueue, _Mapping]]] = ..., owners: _Optional[_Iterable[_Union[OwnerQueue, _Mapping]]] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id", "after_seq", "queue_updates", "latest_progress", "batch")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    QUEUE_UPDATES_FIELD_NUMBER: _ClassVar[int]
    LATEST_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    after_seq: int
    queue_updates: bool
    latest_progress: bool
    batch: bool
    def __init__(self, job_id: _Optional[str] = ..., after_seq: _Optional[int] = ..., queue_updates: _Optional[bool] = ..., latest_progress: _Optional[bool] = ..., batch: _Optional[bool] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("workflow_type", "statuses", "page_size", "page_token", "tenant_wide", "all_tenants", "shared", "owner", "labels", "parent_id")
    WORKFLOW_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TENANT_WIDE_FIELD_NUMBER: _ClassVar[int]
    ALL_TENANTS_FIELD_NUMBER: _ClassVar[int]
    SHARED_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    workflow_type: str
    statuses: _containers.RepeatedScalarFieldContainer[_common_pb2.JobStatus]
    page_size: int
    page_token: str
    tenant_wide: bool
    all_tenants: bool
    shared: bool
    owner: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    parent_id: str
    def __init__(self, workflow_type: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[_common_pb2.JobStatus, str]]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., tenant_wide: _Optional[bool] = ..., all_tenants: _Optional[bool] = ..., shared: _Optional[bool] = ..., owner: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ..., parent_id: _Optional[str] = ...) -> None: ...

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
