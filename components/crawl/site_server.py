"""Serves a folder of static pages on loopback, so the bundled sample site is crawled over
real HTTP: robots.txt, delays, redirects and links behave exactly as on the web.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from components.errors import PsyllmError


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Request lines stay out of the crawl's output."""


@contextmanager
def serve_folder(folder: Path, port: int) -> Iterator[str]:
    """Serve `folder` at http://127.0.0.1:port/ for the duration of the block; yields the root URL.

    Port 0 takes a free port, which the yielded URL names.
    """
    if not folder.is_dir():
        raise PsyllmError(f"crawl.sample_site: {folder} is not a folder")
    handler = partial(_QuietHandler, directory=str(folder))
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as busy:
        raise PsyllmError(
            f"cannot serve {folder} on 127.0.0.1:{port} ({busy.strerror}); "
            "set crawl.sample_site_port in params.yaml to a free port"
        ) from busy
    thread = threading.Thread(target=server.serve_forever, name="sample-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
