"""The benchmark's IdP request shapes are those of the captured samples, and the pieces of
`scimflow bench` that need no stack (existence URLs, memory sampling, phase selection)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from falcon import testing

from scimflow.ops.bench.baseline_app import app
from scimflow.ops.bench.entra import Entra
from scimflow.ops.bench.existence import existence_paths
from scimflow.ops.bench.okta import Okta
from scimflow.ops.bench.plan import SyncPlan
from scimflow.ops.bench.rss import RssSampler, vm_rss_kib
from scimflow.ops.bench.runner import selected_phases

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "idp"
PLAN = SyncPlan(users=100, groups=2, members_per_group=5, deactivations=3, run_id="abc123")


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def shape(value: Any) -> Any:
    """The keys of a body, recursively, and the types of its leaves."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value[:1]]
    return type(value).__name__


def test_okta_creates_carry_a_password_unless_turned_off() -> None:
    body = Okta().user_body(PLAN, 7, None)
    assert set(body) == set(sample("okta/okta-create-user.json"))
    assert body["password"]
    assert "password" not in Okta(passwords=False).user_body(PLAN, 7, None)


def test_okta_existence_check_is_the_documented_query() -> None:
    path = Okta().existence_path("test.user@okta.local")
    assert path == ("/scim/v2/Users?filter=userName%20eq%20%22test.user%40okta.local%22"
                    "&startIndex=1&count=100")


def test_entra_create_has_the_sample_shape_plus_enterprise_attributes_and_manager() -> None:
    body = Entra().user_body(PLAN, 42, "manager-id")
    captured = sample("entra/entra-create-user.json")
    assert set(captured) <= set(body)
    assert body["schemas"] == captured["schemas"]
    enterprise = body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]
    assert enterprise["manager"] == "manager-id"  # a bare string, as Entra sends it
    assert "manager" not in Entra().user_body(PLAN, 3, None)[
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]


def test_entra_matches_on_user_name_with_spaces_as_plus() -> None:
    path = Entra().existence_path("a.b@contoso.com")
    assert path == "/scim/v2/Users?filter=userName+eq+%22a.b%40contoso.com%22"


def test_entra_deactivation_is_a_capitalised_multi_op_patch_with_a_string_false() -> None:
    operations = Entra().deactivation_body(PLAN, 5)["Operations"]
    assert len(operations) > 1
    assert all(op["op"] == "Replace" for op in operations)
    assert sample("entra/entra-patch-disable.json")["Operations"][0] in operations


def test_entra_groups_are_created_empty_then_filled_by_add_patches() -> None:
    group = Entra().group_body(PLAN, 1)
    assert "members" not in group
    added = Entra().add_members_body([("id-1", "u1"), ("id-2", "u2")])
    assert shape(added) == shape(sample("entra/entra-patch-add-members.json"))
    assert [v["value"] for v in added["Operations"][0]["value"]] == ["id-1", "id-2"]


def test_existence_paths_alternate_existing_and_missing_user_names() -> None:
    paths = existence_paths(PLAN, Okta(), 1000)
    names = [urllib.parse.unquote(p.split("filter=")[1].split("&")[0]) for p, _ in paths]
    existing = {n for n, (_, exists) in zip(names, paths, strict=True) if exists}
    missing = {n for n, (_, exists) in zip(names, paths, strict=True) if not exists}
    assert sum(exists for _, exists in paths) == 500
    assert existing == {f'userName eq "{PLAN.user_name(i)}"' for i in range(PLAN.users)}
    assert len(missing) == 500
    assert all(name.startswith('userName eq "absent') for name in missing)


def test_the_baseline_answers_a_filtered_get() -> None:
    path = Okta().existence_path("bjensen@example.com")
    query = path.split("?", 1)[1]
    result = testing.TestClient(app).simulate_get("/scim/v2/Users", query_string=query)
    assert result.status_code == 200
    assert result.json["filter"] == 'userName eq "bjensen@example.com"'


def test_memory_is_sampled_for_every_process_of_a_tree() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with RssSampler(lambda: {"here": os.getpid()}, interval=0.05) as sampler:
            while sampler.samples < 2:
                time.sleep(0.01)
        pids = {p.pid for p in sampler.processes.values()}
        assert {os.getpid(), child.pid} <= pids
        own = sampler.processes[os.getpid()].peak_kib
        assert own >= (vm_rss_kib(os.getpid()) or 0) // 2 > 0
        # The role's peak is a sum over the tree: above its largest process alone.
        assert sampler.role_peak_kib["here"] > own
    finally:
        child.kill()
        child.wait()


def test_the_existence_phase_needs_the_sync() -> None:
    assert selected_phases("sync,existence") == ("sync", "existence")
    with pytest.raises(SystemExit):
        selected_phases("existence")
    with pytest.raises(SystemExit):
        selected_phases("ack,groups")
