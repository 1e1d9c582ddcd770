"""A ``rest`` network power switch for the boards whose port comes with a power switch of its
own (a virtual board's control socket): what a lab's network power switch is for a real board,
served on the exporter's host.

labgrid's ``rest`` model GETs ``/power/<index>/value`` for the state (``0`` or ``1``) and PUTs
``0`` or ``1`` to switch; index ``i`` is the ``i``-th switch given
(:class:`hil.drivers.base.PowerSwitch`). It binds the address it is given (loopback in tests).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from hil.drivers.base import PowerSwitch
from hil.errors import HilError

_PATH = re.compile(r"^/power/(?P<index>[0-9]+)/value$")


class PowerServer:
    """A tiny HTTP server switching the power of boards through their ``PowerSwitch``."""

    def __init__(
        self, switches: Sequence[PowerSwitch], host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.switches = list(switches)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _index(self) -> int | None:
                match = _PATH.match(self.path)
                if match is None or int(match["index"]) >= len(server.switches):
                    self.send_error(404, "no such power port")
                    return None
                return int(match["index"])

            def _reply(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                index = self._index()
                if index is None:
                    return
                try:
                    on = server.powered(index)
                except HilError as error:
                    self._reply(500, str(error).encode())
                    return
                self._reply(200, b"1" if on else b"0")

            def do_PUT(self) -> None:
                index = self._index()
                if index is None:
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).strip()
                if body not in (b"0", b"1"):
                    self._reply(400, b"expected 0 or 1")
                    return
                try:
                    server.switch(index, body == b"1")
                except HilError as error:
                    self._reply(500, str(error).encode())
                    return
                self._reply(200, body)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self._http = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(
            target=self._http.serve_forever, name="hil-power-server", daemon=True
        )

    def switch(self, index: int, on: bool) -> None:
        self.switches[index].power(on)

    def powered(self, index: int) -> bool:
        """The board's own word on its power, not what we last set."""
        return self.switches[index].powered()

    @property
    def url(self) -> str:
        """The ``host`` of a ``NetworkPowerPort`` of model ``rest`` (``{index}`` left in)."""
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}/power/{{index}}/value"

    def start(self) -> PowerServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
