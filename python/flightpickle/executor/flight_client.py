"""The executor client over Arrow Flight: the local client's streams, each
on one ``DoExchange`` call of one gRPC channel kept for the client's life."""

from __future__ import annotations

import pyarrow.flight as flight

from .client import Client
from .flight_connection import FlightConnection


class FlightClient(Client):
    def __init__(self, uri: str, *, timeout: float, window: int, token: str | None, tls_root_certs: bytes | None):
        super().__init__(None, timeout=timeout, window=window, body_limit=0)
        self.uri = uri
        self.flight = flight.FlightClient(uri, tls_root_certs=tls_root_certs)
        headers = [(b"authorization", b"Bearer " + token.encode())] if token is not None else []
        self.options = flight.FlightCallOptions(headers=headers)

    def _connect(self) -> FlightConnection:
        return FlightConnection(self.flight, self.options)

    def close(self) -> None:
        self.flight.close()
