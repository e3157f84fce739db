"""The filter parser and PATCH over plain resources: RFC 7644's examples (§3.4.2.2 and
§3.5.2), without a gateway."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sluice.scim import patch
from sluice.scim.errors import ScimError
from sluice.scim.filter import field, matches, parse_filter, parse_path
from sluice.scim.resources import USER_ATTRIBUTES

BJENSEN: dict[str, Any] = {
    "id": "2819c223",
    "userName": "bjensen@example.com",
    "externalId": "Bjensen",
    "name": {"familyName": "Jensen", "givenName": "Barbara"},
    "displayName": "Babs Jensen",
    "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ],
    "active": True,
    "meta": {"lastModified": "2011-05-13T04:42:34Z", "created": "2010-01-23T04:56:22Z"},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('userName Eq "BJENSEN@example.com"', True),
        ('name.familyName co "ens"', True),
        ('userName sw "bj"', True),
        ('userName ew ".org"', False),
        ("externalId pr", True),
        ('externalId eq "bjensen"', False),  # externalId is case-exact
        ('meta.lastModified gt "2011-05-13T04:42:34Z"', False),
        ('meta.lastModified ge "2011-05-13T04:42:34Z"', True),
        ('meta.lastModified lt "2011-05-13T04:42:34+01:00"', False),
        ('urn:ietf:params:scim:schemas:core:2.0:User:userName sw "bj"', True),
        ('emails[type eq "work" and value co "@example.com"]', True),
        ('emails[type eq "work" and value co "@jensen.org"]', False),
        ('emails[type eq "home"].value eq "babs@jensen.org"', True),
        ('userName eq "x" or (emails.type eq "home" and not (active eq false))', True),
        ("not (userName pr)", False),
        ('displayName ne "Babs Jensen"', False),
        ('displayName ne "Someone"', True),
        ("active eq true and externalId ne null", True),
    ],
)
def test_rfc_filter_examples(text: str, expected: bool) -> None:
    assert matches(BJENSEN, parse_filter(text, attributes=USER_ATTRIBUTES)) is expected


@pytest.mark.parametrize(
    "text",
    ["userName eq", "userName zz 1", "(userName pr", "userName pr)", "emails[type eq", '"x" eq 1'],
)
def test_bad_filters(text: str) -> None:
    with pytest.raises(ScimError) as caught:
        parse_filter(text, attributes=USER_ATTRIBUTES)
    assert caught.value.scim_type == "invalidFilter"
    assert caught.value.status == 400


def test_paths() -> None:
    path = parse_path('members[value eq "2819c223"]')
    assert path.attr == "members" and path.sub is None and path.where is not None
    assert parse_path('emails[type eq "work"].value').sub == "value"
    assert parse_path("name.givenName").dotted == "name.givenname"
    with pytest.raises(ScimError) as caught:
        parse_path("members[")
    assert caught.value.scim_type == "invalidPath"


def _ops(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [patch.PATCH_SCHEMA], "Operations": list(operations)}


def test_patch_add_replace_remove() -> None:
    writable = {k: v for k, v in BJENSEN.items() if k not in patch.READ_ONLY}
    out = patch.apply(
        writable,
        _ops(
            {"op": "add", "value": {"nickName": "Babs", "emails": [{"value": "b@x.org"}]}},
            {"op": "replace", "path": 'emails[type eq "work"].value', "value": "w@x.org"},
            {"op": "Remove", "path": 'emails[type eq "home"]'},
            {"op": "replace", "path": "name", "value": {"givenName": "Barb"}},
            {"op": "replace", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+1"},
        ),
    )
    assert field(out, "nickname") == "Babs"
    assert [e["value"] for e in out["emails"]] == ["w@x.org", "b@x.org"]
    assert out["name"] == {"familyName": "Jensen", "givenName": "Barb"}
    assert field(out, "phonenumbers") == [{"type": "mobile", "value": "+1"}]
    assert writable["emails"][0]["value"] == "bjensen@example.com"  # the input is untouched


def test_patch_members_shapes() -> None:
    group: dict[str, Any] = {"displayName": "g", "members": [{"value": "a"}, {"value": "b"}]}
    added = patch.apply(group, _ops({"op": "add", "path": "members", "value": [{"value": "c"}]}))
    assert [m["value"] for m in added["members"]] == ["a", "b", "c"]
    removed = patch.apply(
        added, _ops({"op": "remove", "path": "members", "value": [{"value": "a"}, {"value": "c"}]})
    )
    assert [m["value"] for m in removed["members"]] == ["b"]
    filtered = patch.apply(group, _ops({"op": "remove", "path": 'members[value eq "b"]'}))
    assert [m["value"] for m in filtered["members"]] == ["a"]
    emptied = patch.apply(group, _ops({"op": "remove", "path": "members"}))
    assert "members" not in emptied
    with pytest.raises(ScimError) as caught:
        patch.apply(
            group, _ops({"op": "replace", "path": 'members[value eq "zz"].display', "value": 1})
        )
    assert caught.value.scim_type == "noTarget"


_PIECES = st.sampled_from(
    [
        "userName",
        "emails",
        "name.givenName",
        "meta.lastModified",
        "active",
        "externalId",
        "eq",
        "ne",
        "co",
        "sw",
        "gt",
        "pr",
        "and",
        "or",
        "not",
        "(",
        ")",
        "[",
        "]",
        ".value",
        '"x"',
        '"2011-05-13T04:42:34Z"',
        "true",
        "null",
        "12",
        "1e400",
        '"\\u00"',
        "urn:x:y",
    ]
)


@given(st.lists(_PIECES, max_size=12).map(" ".join) | st.text(max_size=60))
@settings(max_examples=300, deadline=None)
def test_any_filter_text_parses_or_is_a_scim_400(text: str) -> None:
    status = 200
    try:
        node = parse_filter(text, attributes=USER_ATTRIBUTES)
        matches(BJENSEN, node)
    except ScimError as exc:
        status = exc.status
    assert status in (200, 400)


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(
    st.lists(
        st.fixed_dictionaries(
            {"op": st.sampled_from(["add", "Replace", "remove", "x"])},
            optional={
                "path": st.sampled_from(
                    ["members", 'members[value eq "a"]', "name.givenName", "emails[", "id", ""]
                ),
                "value": _VALUES,
            },
        ),
        min_size=1,
        max_size=4,
    )
)
@settings(max_examples=300, deadline=None)
def test_any_patch_applies_or_is_a_scim_400(operations: list[dict[str, Any]]) -> None:
    group = {"displayName": "g", "members": [{"value": "a"}], "name": {"givenName": "x"}}
    status = 200
    try:
        patch.apply(group, _ops(*operations))
    except ScimError as exc:
        status = exc.status
    assert status in (200, 400)
