"""The one error type a request can fail with, carrying what the gRPC answer needs."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import status_pb2


class EmulatorError(Exception):
    """A request failed; carries the gRPC code, message and rich-status details to send back."""

    def __init__(self, code: grpc.StatusCode, message: str, details: Sequence[Message] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = tuple(details)

    def to_status(self) -> status_pb2.Status:
        status = status_pb2.Status(code=self.code.value[0], message=self.message)
        for detail in self.details:
            packed = any_pb2.Any()
            packed.Pack(detail)
            status.details.append(packed)
        return status


def invalid_argument(message: str) -> EmulatorError:
    """The answer to a malformed request: most of the checks the real service makes end in this."""
    return EmulatorError(grpc.StatusCode.INVALID_ARGUMENT, message)
