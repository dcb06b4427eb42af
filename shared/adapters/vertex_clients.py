"""Vertex AI clients, one per service and region: the regional endpoint with Application Default Credentials, or
insecure gRPC to the local emulator when its host is given. Made when called, never at import."""

from __future__ import annotations

from typing import Any, TypeVar

Client = TypeVar("Client")


def regional_client(client_class: type[Client], emulator_host: str, region: str) -> Client:
    """An aiplatform_v1 `client_class` (e.g. PredictionServiceClient) for `region`, or for the emulator."""
    factory: Any = client_class
    if emulator_host:
        import grpc

        transport = factory.get_transport_class("grpc")(channel=grpc.insecure_channel(emulator_host))
        client: Client = factory(transport=transport)
    else:
        client = factory(client_options={"api_endpoint": f"{region}-aiplatform.googleapis.com"})
    return client
