import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Share(_message.Message):
    __slots__ = ("share_id", "tenant", "job_id", "label", "grantee", "group", "manage", "owner", "created_by", "created_at")
    SHARE_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    GRANTEE_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    MANAGE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    share_id: str
    tenant: str
    job_id: str
    label: str
    grantee: str
    group: bool
    manage: bool
    owner: str
    created_by: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, share_id: _Optional[str] = ..., tenant: _Optional[str] = ..., job_id: _Optional[str] = ..., label: _Optional[str] = ..., grantee: _Optional[str] = ..., group: _Optional[bool] = ..., manage: _Optional[bool] = ..., owner: _Optional[str] = ..., created_by: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ShareJobRequest(_message.Message):
    __slots__ = ("job_id", "label", "grantee", "group", "manage", "tenant_wide", "tenant")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    GRANTEE_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    MANAGE_FIELD_NUMBER: _ClassVar[int]
    TENANT_WIDE_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    label: str
    grantee: str
    group: bool
    manage: bool
    tenant_wide: bool
    tenant: str
    def __init__(self, job_id: _Optional[str] = ..., label: _Optional[str] = ..., grantee: _Optional[str] = ..., group: _Optional[bool] = ..., manage: _Optional[bool] = ..., tenant_wide: _Optional[bool] = ..., tenant: _Optional[str] = ...) -> None: ...

class ListSharesRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListSharesResponse(_message.Message):
    __slots__ = ("shares",)
    SHARES_FIELD_NUMBER: _ClassVar[int]
    shares: _containers.RepeatedCompositeFieldContainer[Share]
    def __init__(self, shares: _Optional[_Iterable[_Union[Share, _Mapping]]] = ...) -> None: ...

class UnshareRequest(_message.Message):
    __slots__ = ("share_id",)
    SHARE_ID_FIELD_NUMBER: _ClassVar[int]
    share_id: str
    def __init__(self, share_id: _Optional[str] = ...) -> None: ...
