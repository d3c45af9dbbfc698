"""A real HTTP server on loopback whose pages exercise every crawler behaviour."""

import contextlib
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CRAWL_DELAY_S = 0.3
SLOW_PAGE_S = 1.5
PARAGRAPH = (
    "Worry is a normal part of life, but when it becomes constant it can drain energy and sleep. "
    "Naming the worry, writing it down and setting aside a short daily worry time are simple steps "
    "that many people find helpful. If worry stops you from working or resting, talk to a professional. "
)


def article(title: str, body: str, links: tuple[str, ...] = ()) -> bytes:
    anchors = "".join(f'<li><a href="{href}">{href}</a></li>' for href in links)
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><nav><a href='/'>Home</a></nav><main><article><h1>{title}</h1>"
        f"<p>{body}</p><p>{body}</p><p>{body}</p></article><ul>{anchors}</ul></main></body></html>"
    ).encode()


HOME_LINKS = (
    "/private/secret.html", "/loop-a", "/offsite-redirect", "/flaky", "/slow", "/big", "/doc.pdf",
    "/copy-1", "/copy-2", "/missing", "/notes.txt", "/moved", "/big-stream", "http://elsewhere.example/page",
    "mailto:someone@example.com", "/nofollow-target",
)  # fmt: skip


class FixtureSite:
    """Routes, plus a log of every request (path, time, user agent)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, float, str]] = []
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                with site._lock:
                    site.requests.append((self.path, time.monotonic(), self.headers.get("User-Agent", "")))
                    site.hits[self.path] += 1
                    hit = site.hits[self.path]
                site.respond(self, hit)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FixtureSite":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def respond(self, handler: BaseHTTPRequestHandler, hit: int) -> None:
        path = handler.path
        if path == "/robots.txt":
            body = f"User-agent: *\nDisallow: /private/\nCrawl-delay: {CRAWL_DELAY_S}\n".encode()
            return self._send(handler, 200, "text/plain", body)
        if path == "/":
            page = article("Home", PARAGRAPH.replace("Worry", "Stress"), HOME_LINKS).replace(
                b"</ul>", b'<li><a rel="nofollow" href="/nofollow-only">x</a></li></ul>'
            )
            return self._send(handler, 200, "text/html; charset=utf-8", page)
        if path in ("/loop-a", "/loop-b"):
            return self._redirect(handler, "/loop-b" if path == "/loop-a" else "/loop-a")
        if path == "/offsite-redirect":
            return self._redirect(handler, "http://elsewhere.example/landing")
        if path == "/moved":
            return self._redirect(handler, "/target")
        if path == "/target":
            return self._send(handler, 200, "text/html", article("Target", PARAGRAPH.replace("Worry", "Grief")))
        if path == "/flaky":
            if hit == 1:
                return self._send(handler, 500, "text/plain", b"try again")
            return self._send(handler, 200, "text/html", article("Flaky", PARAGRAPH.replace("Worry", "Anger")))
        if path == "/slow":
            time.sleep(SLOW_PAGE_S)
            return self._send(handler, 200, "text/html", article("Slow", PARAGRAPH))
        if path == "/big":
            return self._send(handler, 200, "text/html", b"<html><body>" + b"x" * 3_000_000 + b"</body></html>")
        if path == "/big-stream":
            body = b"<html><body>" + b"y" * 3_000_000 + b"</body></html>"
            return self._send(handler, 200, "text/html", body, declare_length=False)
        if path == "/doc.pdf":
            return self._send(handler, 200, "application/pdf", b"%PDF-1.4 not really")
        if path in ("/copy-1", "/copy-2"):
            return self._send(handler, 200, "text/html", article("Copy", PARAGRAPH))
        if path == "/notes.txt":
            return self._send(handler, 200, "text/plain; charset=utf-8", (PARAGRAPH * 2).encode())
        if path == "/nofollow-target":
            return self._send(handler, 200, "text/html", article("Sleep", PARAGRAPH.replace("Worry", "Sleep")))
        return self._send(handler, 404, "text/plain", b"not found")

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        content_type: str,
        body: bytes,
        declare_length: bool = True,
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        if declare_length:
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            handler.wfile.write(body)

    @staticmethod
    def _redirect(handler: BaseHTTPRequestHandler, location: str) -> None:
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()


class ArticleHost(FixtureSite):
    """A plain host (its own loopback port): an index linking `pages` articles, each with its own text."""

    def __init__(self, name: str, pages: int) -> None:
        super().__init__()
        links = tuple(f"/{name}-{page}" for page in range(pages))
        self.routes = {"/": article(f"Host {name}", PARAGRAPH, links)}
        self.routes |= {link: article(f"Article {link}", f"{link} {PARAGRAPH}", ("/",)) for link in links}

    def respond(self, handler: BaseHTTPRequestHandler, hit: int) -> None:
        body = self.routes.get(handler.path)
        if body is None:
            return self._send(handler, 404, "text/plain", b"not found")
        return self._send(handler, 200, "text/html; charset=utf-8", body)

    def article_times(self) -> list[float]:
        return sorted(moment for path, moment, _ in self.requests if path not in ("/", "/robots.txt"))
