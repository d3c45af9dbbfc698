"""Fetching one URL the careful way: scoped redirects, retries with backoff, a size cap.

Redirects are followed by hand so that every hop is canonicalised, checked against the
allowed domains and robots.txt, and counted against the redirect limit. Server errors,
timeouts and connection failures are retried with exponential backoff; 4xx never is.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from components.crawl.urls import canonicalize, in_scope

HTML_TYPES = ("text/html", "application/xhtml+xml")
TEXT_TYPES = ("text/plain",)


class FetchFailed(Exception):
    """The URL yields no page; `kind` is the report's error or skip category."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass(frozen=True)
class Fetched:
    """A successful response body with what extraction needs to know about it."""

    final_url: str
    status: int
    content_type: str
    charset: str | None
    body: bytes


@dataclass(frozen=True)
class FetchPolicy:
    """The limits a fetch runs under, taken from the crawl config."""

    allowed_domains: list[str]
    max_redirects: int
    max_retries: int
    backoff_base_s: float
    max_page_bytes: int


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    policy: FetchPolicy,
    may_visit: Callable[[str], Awaitable[bool]],
    wait_turn: Callable[[str], Awaitable[None]],
) -> Fetched:
    """Fetch `url`, following in-scope redirects; raises FetchFailed with a report category.

    `may_visit` is asked once per hop and returns False when robots.txt forbids the target;
    `wait_turn` is awaited before every request, retries included (the host's rate limit).
    """
    chain = [url]
    current = url
    while True:
        if not await may_visit(current):
            raise FetchFailed("robots_disallowed", current)
        response_or_location = await _get_with_retries(client, current, policy, wait_turn)
        if isinstance(response_or_location, Fetched):
            return response_or_location
        target = canonicalize(response_or_location, base=current)
        if target is None:
            raise FetchFailed("bad_redirect", f"{current} -> {response_or_location}")
        if not in_scope(target, policy.allowed_domains):
            raise FetchFailed("off_domain_redirect", f"{current} -> {target}")
        if target in chain:
            raise FetchFailed("redirect_loop", " -> ".join([*chain, target]))
        if len(chain) > policy.max_redirects:
            raise FetchFailed("too_many_redirects", f"{url} after {policy.max_redirects} redirects")
        chain.append(target)
        current = target


async def _get_with_retries(
    client: httpx.AsyncClient, url: str, policy: FetchPolicy, wait_turn: Callable[[str], Awaitable[None]]
) -> Fetched | str:
    """One hop: a Fetched page, or the Location of a redirect."""
    for attempt in range(policy.max_retries + 1):
        last_try = attempt == policy.max_retries
        await wait_turn(url)
        try:
            result = await _get_once(client, url, policy.max_page_bytes)
        except (httpx.TimeoutException, httpx.TransportError) as failure:
            kind = "timeout" if isinstance(failure, httpx.TimeoutException) else "connection_error"
            if last_try:
                raise FetchFailed(kind, f"{url}: {type(failure).__name__}") from failure
        except FetchFailed as failure:
            if failure.kind != "http_5xx" or last_try:
                raise
        else:
            return result
        await asyncio.sleep(policy.backoff_base_s * 2**attempt)
    raise AssertionError("unreachable: the last attempt returns or raises")


async def _get_once(client: httpx.AsyncClient, url: str, max_bytes: int) -> Fetched | str:
    async with client.stream("GET", url, follow_redirects=False) as response:
        status = response.status_code
        if response.is_redirect:
            return response.headers.get("location", "")
        if status >= 500:
            raise FetchFailed("http_5xx", f"{url}: HTTP {status}")
        if status >= 400:
            raise FetchFailed("http_4xx", f"{url}: HTTP {status}")
        if status != 200:
            raise FetchFailed("http_other", f"{url}: HTTP {status}")
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in HTML_TYPES + TEXT_TYPES:
            raise FetchFailed("unsupported_type", f"{url}: {content_type or 'no content type'}")
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            raise FetchFailed("too_large", f"{url}: {declared} bytes declared")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body.extend(chunk)
            if len(body) > max_bytes:
                raise FetchFailed("too_large", f"{url}: over {max_bytes} bytes")
        return Fetched(url, status, content_type, response.charset_encoding, bytes(body))
