"""Canonical URLs and crawl scope, so that each page is fetched once and never off-site.

Two spellings of one resource (upper-case host, default port, `#fragment`, reordered
query, tracking parameters, `/a/../b`) canonicalise to the same string.
"""

import posixpath
import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urljoin, urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST = re.compile(r"[\w.-]+|\[[0-9a-f:.]+\]")
_TRACKING_PREFIXES = ("utm_",)
_TRACKING_KEYS = {"fbclid", "gclid", "mc_cid", "mc_eid", "ref_src"}
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"


def canonicalize(url: str, base: str | None = None) -> str | None:
    """Absolute, canonical http(s) URL, or None for other schemes and unusable hrefs."""
    try:
        absolute = urljoin(base, url.strip()) if base else url.strip()
        parts = urlsplit(absolute)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    if not _HOST.fullmatch(host):
        return None
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = posixpath.normpath(unquote(parts.path)) if parts.path else "/"
    if parts.path.endswith("/") and path != "/":
        path += "/"
    path = quote(path.replace("//", "/"), safe=_PATH_SAFE)
    query_pairs = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key not in _TRACKING_KEYS and not key.startswith(_TRACKING_PREFIXES)
    ]
    query = urlencode(sorted(query_pairs))
    return urlunsplit((scheme, netloc, path, query, ""))


def host_of(url: str) -> str:
    """host[:port] of a canonical URL: the unit of politeness (robots.txt, rate limit)."""
    return urlsplit(url).netloc


def in_scope(url: str, allowed_domains: list[str]) -> bool:
    """True when the URL's host is an allowed domain or a subdomain of one (ports ignored)."""
    hostname = urlsplit(url).hostname or ""
    return any(hostname == domain or hostname.endswith("." + domain) for domain in allowed_domains)


def origin_of(url: str) -> str:
    """scheme://host[:port], where robots.txt lives."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
