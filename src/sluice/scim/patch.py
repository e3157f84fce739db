"""SCIM PATCH (RFC 7644 §3.5.2) over a resource as JSON: ``add``, ``replace`` and
``remove``, with and without ``path``, in the shapes Okta and Entra ID send (op names in any
case, ``{"op": "replace", "value": {"active": false}}``, ``members`` added or removed as value
lists, ``members[value eq "id"]`` paths).

The operations edit a copy of the resource's writable attributes; the service then checks
the result as it checks a PUT body. Unknown attributes are accepted and ignored there, as in
POST and PUT; read-only ones (``id``, ``meta``, a user's ``groups``) are a 400 ``mutability``.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from sluice.scim.errors import invalid_syntax, invalid_value, mutability, no_target
from sluice.scim.filter import Compare, Logical, Node, Path, field, matches, parse_path

PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
OPERATIONS_MAX = 100
READ_ONLY = frozenset({"id", "meta", "groups", "schemas"})


def apply(resource: dict[str, Any], body: Any) -> dict[str, Any]:
    """``resource`` (writable attributes, canonical names) after the PATCH ``body``."""
    if not isinstance(body, dict):
        raise invalid_syntax("a PATCH body is a JSON object")
    schemas = field(body, "schemas")
    if not isinstance(schemas, list) or PATCH_SCHEMA not in schemas:
        raise invalid_syntax(f"schemas must list {PATCH_SCHEMA}")
    ops = field(body, "operations")
    if not isinstance(ops, list) or not ops:
        raise invalid_syntax("Operations must be a non-empty list")
    if len(ops) > OPERATIONS_MAX:
        raise invalid_value(f"at most {OPERATIONS_MAX} Operations per PATCH")
    out = copy.deepcopy(resource)
    for number, op in enumerate(ops, 1):
        if not isinstance(op, dict):
            raise invalid_syntax(f"Operations[{number}] is not an object")
        name = field(op, "op")
        if not isinstance(name, str) or name.lower() not in ("add", "replace", "remove"):
            raise invalid_syntax(f"Operations[{number}].op must be add, replace or remove")
        raw_path = field(op, "path")
        if raw_path is not None and not isinstance(raw_path, str):
            raise invalid_syntax(f"Operations[{number}].path must be a string")
        path = parse_path(raw_path) if raw_path else None
        value = field(op, "value")
        _operate(out, name.lower(), path, value, number)
    return out


def _key(resource: dict[str, Any], name: str) -> str:
    """The key ``resource`` stores the attribute ``name`` under (its canonical spelling)."""
    return next((k for k in resource if k.lower() == name), name)


def _operate(resource: dict[str, Any], op: str, path: Path | None, value: Any, number: int) -> None:
    if path is None:
        if op == "remove":
            raise no_target(f"Operations[{number}]: remove needs a path")
        if not isinstance(value, dict):
            raise invalid_value(f"Operations[{number}]: without a path, value is an object")
        for name, item in value.items():
            _operate(resource, op, parse_path(name), item, number)
        return
    if path.attr in READ_ONLY:
        raise mutability(f"Operations[{number}]: {path.attr} cannot be changed")
    key = _key(resource, path.attr)
    current = resource.get(key)
    if path.where is None and path.sub is None:
        _whole(resource, key, op, value, number)
    elif path.where is None:
        assert path.sub is not None
        if op == "remove":
            if isinstance(current, dict):
                current.pop(_key(current, path.sub), None)
            return
        target = current if isinstance(current, dict) else {}
        target[_key(target, path.sub)] = value
        resource[key] = target
    else:
        _filtered(resource, key, path, op, value=value, number=number)


def _whole(resource: dict[str, Any], key: str, op: str, value: Any, number: int) -> None:
    current = resource.get(key)
    if op == "remove":
        if isinstance(current, list) and value is not None:  # Entra: remove these members
            drop = {_identity(v) for v in (value if isinstance(value, list) else [value])}
            resource[key] = [v for v in current if _identity(v) not in drop]
        else:
            resource.pop(key, None)
        return
    if isinstance(current, list) or (current is None and isinstance(value, list)):
        items = value if isinstance(value, list) else [value]
        if op == "replace":
            resource[key] = list(items)
            return
        have = {_identity(v) for v in current or []}
        resource[key] = list(current or []) + [v for v in items if _identity(v) not in have]
        return
    if isinstance(current, dict) and isinstance(value, dict):
        merged = dict(current)
        for sub, item in value.items():
            merged[_key(merged, sub.lower())] = item
        resource[key] = merged
        return
    resource[key] = value


def _filtered(
    resource: dict[str, Any], key: str, path: Path, op: str, *, value: Any, number: int
) -> None:
    assert path.where is not None
    current = resource.get(key)
    items = current if isinstance(current, list) else []
    hits = [i for i in items if isinstance(i, dict) and matches(i, path.where)]
    if op == "remove":
        if path.sub is None:
            resource[key] = [i for i in items if not any(i is h for h in hits)]
        else:
            for hit in hits:
                hit.pop(_key(hit, path.sub), None)
        return
    if not hits:
        # RFC 7644 §3.5.2.3: a replace whose filter matches none of the attribute's values
        # is a 400 noTarget; on an attribute without values (Entra replaces phone numbers
        # the user never had) it adds the element the filter describes, as an add does.
        element = _element_of(path.where) if op == "add" or not items else None
        if element is None:
            raise no_target(f"Operations[{number}]: no {path.attr} element matches the path")
        items.append(element)
        resource[key] = items
        hits = [element]
    for hit in hits:
        if path.sub is not None:
            hit[_key(hit, path.sub)] = value
        elif isinstance(value, dict):
            for sub, item in value.items():
                hit[_key(hit, sub.lower())] = item
        else:
            raise invalid_value(f"Operations[{number}]: value must be an object for this path")


def _element_of(node: Node) -> dict[str, Any] | None:
    """The element a filter of ``eq`` terms joined by ``and`` describes, if it is one."""
    if isinstance(node, Compare) and node.op == "eq" and node.path.where is None:
        return {node.path.dotted: node.value}
    if isinstance(node, Logical) and node.op == "and":
        left, right = _element_of(node.left), _element_of(node.right)
        if left is not None and right is not None:
            return {**left, **right}
    return None


def _identity(value: Any) -> Any:
    """What makes two elements of a multi-valued attribute the same: their ``value`` (or,
    without a plain one, the whole element), as something hashable."""
    if isinstance(value, dict):
        inner = field(value, "value")
        if isinstance(inner, str | int | float | bool):
            return inner
    elif isinstance(value, str | int | float | bool) or value is None:
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
