"""canonicalize, in_scope, host_of and origin_of."""

import pytest

from components.crawl.urls import canonicalize, host_of, in_scope, origin_of

BASE = "https://site.org/dir/page.html"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.COM/Path", "http://example.com/Path"),  # scheme and host, not path
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("http://example.com:443/a", "http://example.com:443/a"),  # 443 is not http's default
        ("https://example.com/a#section-2", "https://example.com/a"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/a/./b/../c", "https://example.com/a/c"),
        ("https://example.com/a/b/", "https://example.com/a/b/"),
        ("https://example.com//a//b", "https://example.com/a/b"),
        ("https://example.com/?b=2&a=1&c=3", "https://example.com/?a=1&b=2&c=3"),
        (
            "https://example.com/p?utm_source=x&utm_medium=y&id=3&fbclid=z&gclid=1",
            "https://example.com/p?id=3",
        ),
        ("https://example.com/p?mc_cid=1&mc_eid=2&ref_src=t", "https://example.com/p"),
        ("https://example.com/p?q=", "https://example.com/p?q="),
        ("https://example.com./a", "https://example.com/a"),
        ("https://example.com/%7Euser", "https://example.com/~user"),
        ("https://example.com/a%20b", "https://example.com/a%20b"),
        ("  https://example.com/a  ", "https://example.com/a"),
        ("https://user:secret@Example.com/x", "https://example.com/x"),
    ],
)
def test_canonicalize(url, expected):
    assert canonicalize(url) == expected


def test_spellings_of_one_resource_agree():
    spellings = [
        "HTTPS://WWW.Example.com:443/guide/../help/?b=2&a=1#top",
        "https://www.example.com/help/?a=1&b=2&utm_campaign=spring",
        "https://www.example.com/./help/?a=1&fbclid=abc&b=2",
    ]
    assert {canonicalize(url) for url in spellings} == {"https://www.example.com/help/?a=1&b=2"}


def test_canonical_urls_are_fixed_points():
    url = canonicalize("HTTP://Example.com:80/a/../b/?z=1&y=2#f")
    assert url is not None
    assert canonicalize(url) == url


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        ("other.html", "https://site.org/dir/other.html"),
        ("../up.html", "https://site.org/up.html"),
        ("/root?x=1", "https://site.org/root?x=1"),
        ("//cdn.example.com/lib.js", "https://cdn.example.com/lib.js"),
        ("?page=2", "https://site.org/dir/page.html?page=2"),
        ("#top", "https://site.org/dir/page.html"),
        ("https://elsewhere.net/x", "https://elsewhere.net/x"),
    ],
)
def test_relative_hrefs_resolve_against_base(href, expected):
    assert canonicalize(href, base=BASE) == expected


@pytest.mark.parametrize(
    "href",
    [
        "mailto:someone@example.com",
        "javascript:void(0)",
        "tel:+15550104477",
        "ftp://files.example.com/x",
        "data:text/html,hello",
        "file:///etc/passwd",
    ],
)
def test_non_http_schemes_are_rejected(href):
    assert canonicalize(href) is None
    assert canonicalize(href, base=BASE) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "https://example.com:99999/",
        "https://example.com:port/",
        "",
        "http://",
        "relative/path",
    ],
)
def test_malformed_or_relative_without_base_is_rejected(url):
    assert canonicalize(url) is None


def test_host_with_space_is_rejected():
    assert canonicalize("http://exa mple.com/") is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/a", True),
        ("https://sub.example.com/a", True),
        ("https://deep.sub.example.com/a", True),
        ("https://example.com:8080/a", True),
        ("https://EXAMPLE.com/a", True),
        ("https://badexample.com/a", False),
        ("https://example.com.evil.org/a", False),
        ("https://notexample.org/a", False),
        ("https://other.org/example.com", False),
    ],
)
def test_in_scope(url, expected):
    assert in_scope(url, ["example.com"]) is expected


def test_in_scope_with_several_domains_and_none():
    assert in_scope("https://www.nhs.uk/x", ["www.nimh.nih.gov", "www.nhs.uk"])
    assert not in_scope("https://nhs.uk/x", ["www.nhs.uk"])  # parent of an allowed domain is not in scope
    assert not in_scope("https://example.com/", [])


@pytest.mark.parametrize(
    ("url", "host", "origin"),
    [
        ("https://example.com/a?b=1", "example.com", "https://example.com"),
        ("https://example.com:8080/x?y#z", "example.com:8080", "https://example.com:8080"),
        ("http://127.0.0.1:8765/index.html", "127.0.0.1:8765", "http://127.0.0.1:8765"),
    ],
)
def test_host_and_origin(url, host, origin):
    assert host_of(url) == host
    assert origin_of(url) == origin
