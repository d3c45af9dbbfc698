"""robots.txt per host, parsed with protego and fetched once per crawl.

Following RFC 9309: a 4xx robots.txt (none published) allows everything; a server error or
an unreachable host disallows everything, since the site may be in trouble. Such a host is marked
unavailable, so the report can tell "no network" from "the site says no".
"""

from dataclasses import dataclass

import httpx
from protego import Protego

from components.crawl.urls import origin_of

_ALLOW_ALL = Protego.parse("")
_DISALLOW_ALL = Protego.parse("User-agent: *\nDisallow: /\n")


@dataclass(frozen=True)
class RobotsRules:
    """The parsed rules for one host, as seen by our user agent."""

    parser: Protego
    user_agent: str
    available: bool = True

    def allows(self, url: str) -> bool:
        return self.parser.can_fetch(url, self.user_agent)

    @property
    def crawl_delay_s(self) -> float:
        delay = self.parser.crawl_delay(self.user_agent)
        return float(delay) if delay is not None else 0.0


class RobotsCache:
    """Fetches and remembers robots.txt for each origin the crawl touches."""

    def __init__(self, client: httpx.AsyncClient, user_agent: str, max_bytes: int) -> None:
        self._client = client
        self._user_agent = user_agent
        self._max_bytes = max_bytes
        self._rules: dict[str, RobotsRules] = {}

    async def rules_for(self, url: str) -> RobotsRules:
        origin = origin_of(url)
        if origin not in self._rules:
            self._rules[origin] = await self._fetch(origin)
        return self._rules[origin]

    async def _fetch(self, origin: str) -> RobotsRules:
        try:
            response: httpx.Response | None = await self._client.get(f"{origin}/robots.txt", follow_redirects=True)
        except httpx.HTTPError:
            response = None
        if response is None or response.status_code >= 500:
            return RobotsRules(_DISALLOW_ALL, self._user_agent, available=False)
        if response.status_code >= 400:
            return RobotsRules(_ALLOW_ALL, self._user_agent)
        text = response.content[: self._max_bytes].decode("utf-8", errors="replace")
        return RobotsRules(Protego.parse(text), self._user_agent)
