"""Who may start a step when authentication is on: the worker running the parent's attempt.

A handler's ``ctx.step`` calls RunStep from the worker, which holds no user token. It holds the
attempt's capability instead (``ExecuteRequest.series_token``, signed by the gateway for this
attempt of this job and naming the job's owner; see ``core.auth._capability``) and sends it as the
``workmesh-series-capability`` metadata. :class:`GatewayAuthInterceptor` lets a RunStep that
carries one reach the handler; :class:`StepAccess` checks it there and runs the step as the
parent's owner, so the child job belongs to the parent's tenant and subject (another tenant does
not see it; the owner and ``jobs:manage`` of the tenant do). A RunStep with a caller's token
instead is refused: steps are started by the parent's attempt, not by callers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from workmesh.services.core.auth import (
    CAPABILITY_METADATA,
    JOBS_SUBMIT,
    AuthInterceptor,
    Identity,
    SeriesCapabilities,
    capability_of,
    current_identity,
    reset_identity,
    use_identity,
)
from workmesh.services.core.errors import FailedPrecondition, PermissionDenied
from workmesh.v1 import gateway_pb2

__all__ = ["RUN_STEP", "RUN_STEPS", "GatewayAuthInterceptor", "StepAccess"]

RUN_STEP = "/workmesh.v1.Gateway/RunStep"
RUN_STEPS = "/workmesh.v1.Gateway/RunSteps"  # RunStep as a stream: the same metadata, each request checked
WRITE = "write"  # the op of an attempt's capability


class GatewayAuthInterceptor(AuthInterceptor):
    """The caller-token interceptor, except for a RunStep that carries an attempt capability:
    it reaches the handler without an identity, and :class:`StepAccess` checks the capability
    (a wrong one is refused there, never let through)."""

    async def intercept_service(
        self, continuation: Callable[..., Any], handler_call_details: grpc.HandlerCallDetails
    ) -> Any:
        if handler_call_details.method in (RUN_STEP, RUN_STEPS) and capability_of(
            handler_call_details.invocation_metadata
        ):
            return await continuation(handler_call_details)
        return await super().intercept_service(continuation, handler_call_details)


class StepAccess:
    """Checks a RunStep's credentials (authentication on).

    Args:
        capabilities: verifies the attempts' capabilities; None when the gateway has no
            ``WORKMESH_SERIES_KEY`` (then attempts get none, and steps cannot be started).
    """

    def __init__(self, capabilities: SeriesCapabilities | None) -> None:
        self._capabilities = capabilities

    @contextlib.contextmanager
    def acting(self, request: gateway_pb2.RunStepRequest, context) -> Iterator[None]:
        """While the step is found or created: the parent's owner is the current caller.

        Raises:
            Unauthenticated: a missing, forged or expired capability.
            PermissionDenied: a caller's token, or the capability of another job or attempt.
            FailedPrecondition: the gateway issues no capabilities (no ``WORKMESH_SERIES_KEY``).
        """
        token = capability_of(context.invocation_metadata()) if context is not None else None
        if token is None:
            who = current_identity()
            name = f"the caller {who.subject!r} of tenant {who.tenant!r}" if who is not None else "a caller"
            raise PermissionDenied(
                f"parent_job_id: steps are started by the worker running the parent job, with its attempt's "
                f"capability (metadata {CAPABILITY_METADATA!r}); {name} cannot start them with a token"
            )
        if self._capabilities is None:
            raise FailedPrecondition(
                "parent_job_id: with authentication on, steps need WORKMESH_SERIES_KEY on the gateway "
                "(the worker proves its attempt with the capability signed with it)"
            )
        grant = self._capabilities.decode(token)
        if grant.op != WRITE or (grant.job_id, grant.attempt) != (request.parent_job_id, request.parent_attempt):
            raise PermissionDenied(
                f"parent_job_id: the capability is of attempt {grant.attempt} of job {grant.job_id!r} "
                f"({grant.op}), not of attempt {request.parent_attempt} of job {request.parent_job_id!r}: "
                "a worker starts steps only of the attempt it runs"
            )
        reset = use_identity(Identity(grant.tenant, grant.subject, frozenset({JOBS_SUBMIT}), via="attempt"))
        try:
            yield
        finally:
            reset_identity(reset)
