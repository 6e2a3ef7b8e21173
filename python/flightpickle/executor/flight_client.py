"""The executor client over Arrow Flight: the local client's streams, each
on one ``DoExchange`` call of one gRPC channel kept for the client's life."""

from __future__ import annotations

import pyarrow.flight as flight

from .client import Client
from .flight_connection import FlightConnection
from .settings import FLIGHT_MESSAGE_OVERHEAD

REMEMBERED_DIGESTS = 4096
#: gRPC takes its message size limits as a C int.
GRPC_LARGEST_LIMIT = 2**31 - 1


class FlightClient(Client):
    def __init__(
        self, uri: str, *, timeout: float, window: int, body_limit: int, token: str | None, tls_root_certs: bytes | None
    ):
        super().__init__(None, timeout=timeout, window=window, body_limit=body_limit)
        self.uri = uri
        # gRPC refuses a larger reply message before reading it, as the local
        # transport refuses a frame whose length is over the limit.
        receive_limit = min(body_limit + FLIGHT_MESSAGE_OVERHEAD, GRPC_LARGEST_LIMIT)
        self.flight = flight.FlightClient(
            uri,
            tls_root_certs=tls_root_certs,
            generic_options=[("grpc.max_receive_message_length", receive_limit)],
        )
        headers = [(b"authorization", b"Bearer " + token.encode())] if token is not None else []
        self.options = flight.FlightCallOptions(headers=headers)
        #: Digests of the functions this client sent with an opening.
        self.sent: set[str] = set()

    def _envelope_to_open_with(self, digest: str, envelope: bytes) -> bytes | None:
        # The first stream of a function sends it with the opening: over the
        # network the NeedBody round trip is the dearer one. Later streams
        # send the digest, as the workers most likely have it by then.
        if digest in self.sent:
            return None
        if len(self.sent) >= REMEMBERED_DIGESTS:
            self.sent.clear()  # at worst a function is sent with its opening again
        self.sent.add(digest)
        return envelope

    def _connect(self) -> FlightConnection:
        return FlightConnection(self.flight, self.options, self.body_limit)

    def close(self) -> None:
        self.flight.close()
