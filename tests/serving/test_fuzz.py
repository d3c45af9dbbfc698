"""A Hypothesis campaign over every endpoint of the running service: no 5xx, no trace, whatever arrives."""

from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.serving.servers import API_KEY

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=99),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=6,
)
FIELDS = {
    "/answer": ["question", "description", "max_new_tokens"],
    "/answer_stream": ["question", "description", "max_new_tokens"],
    "/screen": ["text"],
    "/feedback": ["request_id", "helpfulness", "fluency", "relevance", "logic", "comment", "rater_id"],
    "/conversation": ["token"],
    "/conversation/message": ["token", "text"],
    "/console/sign-in": ["token"],
}
# Plausible values for the fields, mixed with anything at all, so the campaign also reaches past validation.
PLAUSIBLE = {
    "question": st.text(min_size=1, max_size=200),
    "token": st.text(min_size=1, max_size=120),
    "text": st.text(min_size=1, max_size=200),
    "max_new_tokens": st.integers(min_value=-5, max_value=40),
    "helpfulness": st.integers(min_value=0, max_value=6),
}
CAMPAIGN = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def body_for(route: str):
    fields = FIELDS[route]
    return (
        st.fixed_dictionaries(
            {},
            optional={name: PLAUSIBLE.get(name, JSON_VALUES) | JSON_VALUES for name in fields},
        )
        | JSON_VALUES
    )


def check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text and 'File "' not in response.text


@pytest.mark.parametrize("route", sorted(FIELDS))
def test_json_bodies_never_cause_a_server_error(served, route):
    @CAMPAIGN
    @given(body=body_for(route))
    def campaign(body):
        check(httpx.post(f"{served.url}{route}", json=body, timeout=120))

    campaign()


@CAMPAIGN
@given(route=st.sampled_from(sorted(FIELDS)), raw=st.binary(max_size=200), content_type=st.sampled_from(
    ["application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""]
))  # fmt: skip
def test_raw_bytes_never_cause_a_server_error(served, route, raw, content_type):
    check(httpx.post(f"{served.url}{route}", content=raw, headers={"content-type": content_type}, timeout=120))


@CAMPAIGN
@given(case_id=st.text(max_size=20), status=st.text(max_size=20), key=st.sampled_from([API_KEY, "", "nope"]))
def test_the_case_queue_never_causes_a_server_error(served, case_id, status, key):
    headers = {"X-API-Key": key}
    check(httpx.get(f"{served.url}/cases", params={"status": status}, headers=headers))
    check(httpx.post(f"{served.url}/cases/{quote(case_id, safe='') or '0'}/resolve", headers=headers))
