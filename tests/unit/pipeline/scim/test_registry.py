"""The resource-type registry and tenant extension validation (RFC 7643 §2, §6, §7)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from scimflow.pipeline.errors import InvalidValue, NotFound
from scimflow.pipeline.scim.registry import GROUP, USER, SchemaRegistry, default_registry
from scimflow.pipeline.scim.schema import (
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    USER_SCHEMA,
    AttrType,
    Mutability,
)

HR_URN = "urn:example:scim:hr:1.0:User"


def hr_extension() -> dict[str, Any]:
    """A well-formed tenant extension exercising every attribute shape."""
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": HR_URN,
        "name": "HrUser",
        "description": "Acme HR attributes",
        "attributes": [
            {
                "name": "badgeNumber",
                "type": "string",
                "multiValued": False,
                "description": "Badge printed on the access card.",
                "required": True,
                "caseExact": True,
                "mutability": "readWrite",
                "returned": "default",
                "uniqueness": "server",
            },
            {"name": "hireDate", "type": "dateTime"},
            {"name": "fte", "type": "decimal"},
            {"name": "contractor", "type": "boolean"},
            {"name": "skills", "type": "string", "multiValued": True},
            {"name": "shift", "type": "string", "canonicalValues": ["day", "night"]},
            {"name": "pin", "type": "string", "mutability": "writeOnly", "returned": "never"},
            {
                "name": "buddy",
                "type": "complex",
                "subAttributes": [
                    {"name": "value", "type": "string", "caseExact": True},
                    {"name": "$ref", "type": "reference", "referenceTypes": ["User"]},
                    {"name": "display_name", "type": "string", "mutability": "readOnly"},
                ],
            },
            {"name": "homepage", "type": "reference", "referenceTypes": ["external"]},
        ],
    }


# --- Built-in resource types -----------------------------------------------------------


def test_user_resource_type() -> None:
    assert USER.name == "User"
    assert USER.endpoint == "/Users"
    assert USER.schema.id == USER_SCHEMA
    assert USER.schema_ids == (USER_SCHEMA, ENTERPRISE_USER_SCHEMA)
    assert [ext.required for ext in USER.extensions] == [False]


def test_group_resource_type() -> None:
    assert GROUP.name == "Group"
    assert GROUP.endpoint == "/Groups"
    assert GROUP.schema.id == GROUP_SCHEMA
    assert GROUP.extensions == ()


def test_default_registry_is_cached() -> None:
    assert default_registry() is default_registry()
    assert default_registry().resource_types == (USER, GROUP)


@pytest.mark.parametrize("name", ["User", "user", "USER"])
def test_resource_type_by_name(name: str) -> None:
    assert default_registry().resource_type(name) is USER


def test_unknown_resource_type_is_not_found() -> None:
    with pytest.raises(NotFound, match="Widget"):
        default_registry().resource_type("Widget")


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [("/Users", USER), ("Users", USER), ("/Groups/", GROUP), ("/users", None), ("/Me", None)],
)
def test_by_endpoint(endpoint: str, expected: object) -> None:
    assert default_registry().by_endpoint(endpoint) is expected


def test_schemas_lists_core_schemas_first() -> None:
    ids = [schema.id for schema in default_registry().schemas()]
    assert ids == [USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE_USER_SCHEMA]


def test_schemas_are_distinct_when_an_extension_is_shared() -> None:
    shared = SchemaRegistry((USER, USER.with_extensions(()), GROUP))
    assert len(shared.schemas()) == 3


@pytest.mark.parametrize("urn", [ENTERPRISE_USER_SCHEMA, ENTERPRISE_USER_SCHEMA.upper()])
def test_schema_by_urn_is_case_insensitive(urn: str) -> None:
    assert default_registry().schema(urn).id == ENTERPRISE_USER_SCHEMA


def test_unknown_schema_is_not_found() -> None:
    with pytest.raises(NotFound):
        default_registry().schema("urn:example:nothing")


# --- Custom extensions: accepted ----------------------------------------------------------


def test_good_extension_is_added_to_a_new_registry() -> None:
    base = default_registry()
    extended = base.with_extension("User", hr_extension(), required=True)

    user = extended.resource_type("User")
    assert user.schema_ids == (USER_SCHEMA, ENTERPRISE_USER_SCHEMA, HR_URN)
    assert user.extensions[-1].required is True
    assert extended.resource_type("Group") is GROUP
    assert [s.id for s in extended.schemas()][-1] == HR_URN
    # The registry it came from is untouched.
    assert base.resource_type("User") is USER
    assert len(base.schemas()) == 3


def test_good_extension_parses_every_characteristic() -> None:
    schema = default_registry().with_extension("User", hr_extension()).schema(HR_URN)
    assert schema.name == "HrUser"
    badge = schema.attribute("badgeNumber")
    assert badge is not None
    assert badge.required
    assert badge.case_exact
    buddy = schema.attribute("BUDDY")
    assert buddy is not None
    assert buddy.type is AttrType.COMPLEX
    ref = buddy.sub("$ref")
    assert ref is not None
    assert ref.reference_types == ("User",)
    display = buddy.sub("display_name")
    assert display is not None
    assert display.mutability is Mutability.READ_ONLY


def test_extension_defaults_to_not_required() -> None:
    extended = default_registry().with_extension("Group", hr_extension())
    assert extended.resource_type("Group").extensions[0].required is False


def test_extensions_accumulate() -> None:
    other = hr_extension() | {"id": "urn:example:scim:finance:1.0:User"}
    extended = (
        default_registry().with_extension("User", hr_extension()).with_extension("User", other)
    )
    assert extended.resource_type("User").schema_ids[-2:] == (HR_URN, other["id"])


def test_extension_on_unknown_resource_type_is_not_found() -> None:
    with pytest.raises(NotFound):
        default_registry().with_extension("Device", hr_extension())


# --- Custom extensions: rejected ------------------------------------------------------------

Mutator = Callable[[dict[str, Any]], None]


def set_top(key: str, value: Any) -> Mutator:
    def mutate(doc: dict[str, Any]) -> None:
        doc[key] = value

    return mutate


def set_attr(index: int, key: str, value: Any) -> Mutator:
    def mutate(doc: dict[str, Any]) -> None:
        doc["attributes"][index][key] = value

    return mutate


def drop_attr_key(index: int, key: str) -> Mutator:
    def mutate(doc: dict[str, Any]) -> None:
        del doc["attributes"][index][key]

    return mutate


def set_sub(key: str, value: Any, index: int = 0) -> Mutator:
    """Change the sub-attribute `index` of "buddy" (attribute 7)."""

    def mutate(doc: dict[str, Any]) -> None:
        doc["attributes"][7]["subAttributes"][index][key] = value

    return mutate


def add_attr(attribute: Any) -> Mutator:
    def mutate(doc: dict[str, Any]) -> None:
        doc["attributes"].append(attribute)

    return mutate


def add_sub(attribute: Any) -> Mutator:
    def mutate(doc: dict[str, Any]) -> None:
        doc["attributes"][7]["subAttributes"].append(attribute)

    return mutate


BAD_EXTENSIONS: dict[str, tuple[Mutator, str]] = {
    # the schema id (RFC 7643 §7, RFC 8141)
    "id missing": (lambda doc: doc.pop("id"), "must be a URN"),
    "id not a string": (set_top("id", 42), "must be a URN"),
    "id not a URN": (set_top("id", "acme-hr"), "must be a URN"),
    "id with a slash": (set_top("id", "urn:example:hr/1.0"), "must be a URN"),
    "id with a space": (set_top("id", "urn:example:hr 1.0"), "must be a URN"),
    "id ending with a colon": (set_top("id", "urn:example:hr:"), "must be a URN"),
    "id one-letter NID": (set_top("id", "urn:x:hr"), "must be a URN"),
    "id reuses the enterprise URN": (set_top("id", ENTERPRISE_USER_SCHEMA), "already exists"),
    "id reuses a core URN in other case": (set_top("id", USER_SCHEMA.upper()), "reserved"),
    "id in the core namespace": (
        set_top("id", "urn:ietf:params:scim:schemas:core:2.0:Device"),
        "reserved",
    ),
    "id in the messages namespace": (
        set_top("id", "urn:ietf:params:scim:api:messages:2.0:Custom"),
        "reserved",
    ),
    "name not a string": (set_top("name", ["HR"]), "'name' must be a string"),
    "description not a string": (set_top("description", 7), "'description' must be a string"),
    # the attribute list
    "attributes missing": (lambda doc: doc.pop("attributes"), "'attributes' must be a non-empty"),
    "attributes empty": (set_top("attributes", []), "'attributes' must be a non-empty"),
    "attributes not a list": (set_top("attributes", {"a": 1}), "'attributes' must be a non-empty"),
    "attribute not an object": (add_attr("badge"), "attributes[9] must be a JSON object"),
    # names (RFC 7643 §2.1)
    "name missing": (drop_attr_key(0, "name"), "attributes[0] has invalid name None"),
    "name starts with a digit": (set_attr(0, "name", "1badge"), "invalid name '1badge'"),
    "name with a dot": (set_attr(0, "name", "badge.number"), "invalid name 'badge.number'"),
    "name with a space": (set_attr(0, "name", "badge number"), "invalid name"),
    "name with a dollar": (set_attr(0, "name", "badge$"), "invalid name"),
    "$ref at top level": (
        add_attr({"name": "$ref", "type": "reference", "referenceTypes": ["User"]}),
        "only valid as a sub-attribute",
    ),
    "duplicate names": (set_attr(1, "name", "BadgeNumber"), "duplicate attribute name"),
    "duplicate sub-attribute names": (
        add_sub({"name": "VALUE", "type": "string"}),
        "duplicate attribute name 'buddy.VALUE'",
    ),
    # characteristics (RFC 7643 §7)
    "unknown characteristic": (set_attr(0, "multivalued", True), "unknown characteristics"),
    "type missing": (drop_attr_key(0, "type"), "'badgeNumber' has no 'type'"),
    "type unknown": (set_attr(0, "type", "text"), "invalid type 'text'"),
    "mutability unknown": (set_attr(0, "mutability", "writeOnce"), "invalid mutability"),
    "returned unknown": (set_attr(0, "returned", "sometimes"), "invalid returned"),
    "uniqueness unknown": (set_attr(0, "uniqueness", "tenant"), "invalid uniqueness"),
    "keyword of the wrong JSON type": (set_attr(0, "mutability", ["readWrite"]), "invalid"),
    "multiValued as a string": (set_attr(0, "multiValued", "false"), "non-boolean multiValued"),
    "required as an integer": (set_attr(0, "required", 1), "non-boolean required"),
    "caseExact as null": (set_attr(0, "caseExact", None), "non-boolean caseExact"),
    "description not a string in attribute": (set_attr(0, "description", 3), "description"),
    # data type rules (RFC 7643 §2.3, §2.4)
    "boolean with uniqueness": (set_attr(3, "uniqueness", "server"), "cannot have uniqueness"),
    "complex with uniqueness": (set_attr(7, "uniqueness", "global"), "cannot have uniqueness"),
    "integer caseExact": (
        add_attr({"name": "level", "type": "integer", "caseExact": True}),
        "cannot be caseExact",
    ),
    "$ref not a reference": (set_sub("type", "string", index=1), "must be of type reference"),
    "writeOnly but returned": (set_attr(6, "returned", "default"), "returned 'never'"),
    "writeOnly without returned": (drop_attr_key(6, "returned"), "returned 'never'"),
    "required and readOnly": (set_attr(0, "mutability", "readOnly"), "required and readOnly"),
    # canonical values and reference types (RFC 7643 §7)
    "canonicalValues not a list": (set_attr(5, "canonicalValues", "day"), "canonicalValues"),
    "canonicalValues not strings": (set_attr(5, "canonicalValues", [1, 2]), "canonicalValues"),
    "canonicalValues empty string": (set_attr(5, "canonicalValues", [""]), "canonicalValues"),
    "canonicalValues duplicated": (
        set_attr(5, "canonicalValues", ["day", "DAY"]),
        "duplicate canonicalValues",
    ),
    "canonicalValues on a boolean": (
        set_attr(3, "canonicalValues", ["yes"]),
        "cannot have canonicalValues",
    ),
    "referenceTypes on a string": (
        set_attr(0, "referenceTypes", ["User"]),
        "not of type reference",
    ),
    "reference without referenceTypes": (
        drop_attr_key(8, "referenceTypes"),
        "needs non-empty referenceTypes",
    ),
    "reference with empty referenceTypes": (
        set_attr(8, "referenceTypes", []),
        "needs non-empty referenceTypes",
    ),
    "unknown referenceTypes": (set_attr(8, "referenceTypes", ["Device"]), "unknown referenceTypes"),
    # complex attributes (RFC 7643 §2.3.8)
    "complex sub-attribute": (
        add_sub({"name": "geo", "type": "complex", "subAttributes": [{"name": "lat"}]}),
        "'buddy.geo' is complex, but a sub-attribute cannot be complex",
    ),
    "sub-attribute with subAttributes": (
        set_sub("subAttributes", [{"name": "x", "type": "string"}]),
        "cannot have subAttributes",
    ),
    "subAttributes on a string": (
        set_attr(0, "subAttributes", [{"name": "x", "type": "string"}]),
        "cannot have subAttributes",
    ),
    "complex without subAttributes": (
        drop_attr_key(7, "subAttributes"),
        "'buddy' subAttributes' must be a non-empty array",
    ),
    "complex with empty subAttributes": (
        set_attr(7, "subAttributes", []),
        "must be a non-empty array",
    ),
    "sub-attribute not an object": (
        add_sub("value"),
        "subAttributes[3] must be a JSON object",
    ),
}


@pytest.mark.parametrize(("mutate", "detail"), BAD_EXTENSIONS.values(), ids=BAD_EXTENSIONS.keys())
def test_bad_extension_is_rejected(mutate: Mutator, detail: str) -> None:
    doc = hr_extension()
    mutate(doc)
    before = copy.deepcopy(doc)
    with pytest.raises(InvalidValue) as raised:
        default_registry().with_extension("User", doc)
    assert detail in raised.value.detail
    assert raised.value.to_body()["scimType"] == "invalidValue"
    assert raised.value.status == 400
    assert doc == before  # validation never edits the caller's document


@pytest.mark.parametrize("doc", [None, "urn:example:x", ["attributes"]])
def test_extension_document_must_be_an_object(doc: Any) -> None:
    with pytest.raises(InvalidValue, match="JSON object"):
        default_registry().with_extension("User", doc)


def test_rejected_extension_leaves_no_trace() -> None:
    doc = hr_extension()
    doc["attributes"][0]["type"] = "text"
    with pytest.raises(InvalidValue):
        default_registry().with_extension("User", doc)
    assert [s.id for s in default_registry().schemas()] == [
        USER_SCHEMA,
        GROUP_SCHEMA,
        ENTERPRISE_USER_SCHEMA,
    ]


def test_same_extension_cannot_be_declared_twice() -> None:
    once = default_registry().with_extension("User", hr_extension())
    with pytest.raises(InvalidValue, match="already exists"):
        once.with_extension("Group", hr_extension())
