"""Main text, title and outgoing links of a fetched page.

trafilatura finds the article text and drops navigation, headers and footers; lxml
lists the links. Links marked rel=nofollow are not followed.
"""

from dataclasses import dataclass

import lxml.html
import trafilatura
from lxml.etree import ParserError

from components.crawl.fetch import TEXT_TYPES, Fetched
from components.crawl.urls import canonicalize


@dataclass(frozen=True)
class Extracted:
    title: str
    text: str
    links: list[str]


def extract(page: Fetched) -> Extracted:
    """Text and links of an HTML or plain-text page; empty text when nothing is readable."""
    if page.content_type in TEXT_TYPES:
        return Extracted("", page.body.decode(page.charset or "utf-8", errors="replace"), [])
    document = trafilatura.bare_extraction(
        page.body, url=page.final_url, with_metadata=True, include_comments=False, include_tables=False
    )
    text = (document.text if document else "") or ""
    title = (document.title if document else "") or ""
    return Extracted(title, text, _links(page))


def _links(page: Fetched) -> list[str]:
    try:
        tree = lxml.html.fromstring(page.body)
    except (ParserError, ValueError):
        return []
    base_element = tree.find(".//base[@href]")
    base = canonicalize(base_element.get("href", ""), base=page.final_url) if base_element is not None else None
    base = base or page.final_url
    links: list[str] = []
    for anchor in tree.iterfind(".//a[@href]"):
        if "nofollow" in (anchor.get("rel") or "").lower().split():
            continue
        url = canonicalize(anchor.get("href", ""), base=base)
        if url is not None and url not in links:
            links.append(url)
    return links
