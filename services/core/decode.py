"""Registering a servicer so that a request that cannot be parsed is INVALID_ARGUMENT.

grpc.aio parses a request before the servicer sees it; when the bytes are not a valid message,
it answers UNKNOWN ("Unexpected DecodeError") for a unary request, and a streaming servicer
sees a ``DecodeError`` from its request iterator (INTERNAL). Both are a client's mistake, so
:func:`add_servicer` registers the methods with a parser that never raises: a request it cannot
parse becomes an :class:`Undecodable`, and the method answers INVALID_ARGUMENT naming the
message type without running — or, in a client stream, the iterator raises
:class:`~workmesh.services.core.errors.InvalidArgument` naming the item, which the servicer turns
into its status like any other bad item. A servicer that reads its stream with
``context.read()`` (``streams.BatchedStream``) checks each item with :func:`checked`.

Every service registers this way (gateway, gateway admin, worker, results).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import grpc
from google.protobuf import descriptor, message, message_factory

from workmesh.services.core.errors import InvalidArgument

__all__ = ["Undecodable", "add_servicer", "checked"]


class Undecodable:
    """A request whose bytes are not a valid message of its type."""

    def __init__(self, type_name: str, error: Exception) -> None:
        self.type_name = type_name
        self.error = error

    def rule(self) -> str:
        return f"is not a valid {self.type_name} ({self.error})"


def _parser(cls: type[message.Message], from_string: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    name = cls.DESCRIPTOR.full_name

    def parse(raw: bytes) -> message.Message | Undecodable:
        try:
            return from_string(raw)
        except message.DecodeError as exc:
            return Undecodable(name, exc)

    return parse


def checked(request: Any, index: int) -> Any:
    """`request`, the `index`-th item of a client stream, unless it could not be parsed.

    Raises:
        InvalidArgument: naming the item (``request[<index>]``) and its message type.
    """
    if isinstance(request, Undecodable):
        raise InvalidArgument(f"request[{index}]", request.rule())
    return request


async def _checked(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    index = 0
    async for request in requests:
        yield checked(request, index)
        index += 1


def _guard(behavior: Callable, client_streaming: bool) -> Callable:
    if client_streaming:
        if inspect.isasyncgenfunction(behavior):

            async def stream_gen(requests, context):
                async for item in behavior(_checked(requests), context):
                    yield item

            return stream_gen

        async def stream(requests, context):
            return await behavior(_checked(requests), context)

        return stream
    if inspect.isasyncgenfunction(behavior):

        async def unary_gen(request, context):
            if isinstance(request, Undecodable):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"request: {request.rule()}")
            async for item in behavior(request, context):
                yield item

        return unary_gen

    async def unary(request, context):
        if isinstance(request, Undecodable):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"request: {request.rule()}")
        return await behavior(request, context)

    return unary


_FACTORIES = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def _serializer(cls: type[message.Message]) -> Callable[[Any], bytes]:
    def serialize(response: message.Message | bytes) -> bytes:
        # a servicer may send a response it encoded itself (the results service's series)
        return response if isinstance(response, bytes) else cls.SerializeToString(response)

    return serialize


def add_servicer(
    servicer: object,
    service: descriptor.ServiceDescriptor,
    server: grpc.aio.Server,
    *,
    parsers: Mapping[str, Callable[[bytes], Any]] | None = None,
) -> None:
    """Register every method of `service` on `server`, served by the same-named method of `servicer`.

    Use it instead of the generated ``add_<Service>Servicer_to_server``: the same handlers, with
    unparseable requests answered INVALID_ARGUMENT (see the module docstring). A method may
    return or yield ``bytes`` (an already serialized response).

    Args:
        parsers: method name -> request parser to use instead of the message class's
            ``FromString`` (it raises ``DecodeError`` on bytes that are not a valid request).
    """
    handlers = {}
    for method in service.methods:
        request_cls = message_factory.GetMessageClass(method.input_type)
        response_cls = message_factory.GetMessageClass(method.output_type)
        streaming = (method.client_streaming, method.server_streaming)
        behavior = _guard(getattr(servicer, method.name), method.client_streaming)
        parse = (parsers or {}).get(method.name, request_cls.FromString)
        handlers[method.name] = _FACTORIES[streaming](
            behavior, request_deserializer=_parser(request_cls, parse), response_serializer=_serializer(response_cls)
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
