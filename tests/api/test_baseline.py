"""The benchmark's bare Falcon baseline parses the bodies IdPs send, as the real API does.

Had it refused `application/scim+json` (Falcon's default media handlers know only JSON), the
benchmark would compare the real API with a 415 error page.
"""

from __future__ import annotations

import json

from falcon import testing

from scimflow.ops.bench.baseline_app import app


def test_the_baseline_parses_a_scim_json_body() -> None:
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bjensen"}
    result = testing.TestClient(app).simulate_post(
        "/scim/v2/Users", body=json.dumps(body),
        headers={"Content-Type": "application/scim+json"},
    )
    assert result.status_code == 201
    assert result.json["userName"] == "bjensen"
