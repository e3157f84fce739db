"""SCIM filters (RFC 7644 §3.4.2.2) and attribute paths (§3.5.2): a parser for the subset
identity providers send, and their evaluation against a resource as JSON.

Grammar (case-insensitive keywords and attribute names)::

    filter    = term *("or" term)
    term      = factor *("and" factor)
    factor    = "not" "(" filter ")" / "(" filter ")" / path "pr" / path op value
    path      = [schema-urn ":"] attr ["[" filter "]"] ["." sub]
    op        = "eq" / "ne" / "co" / "sw" / "ew" / "gt" / "ge" / "lt" / "le"
    value     = JSON string / number / "true" / "false" / "null"

Bounds: ``FILTER_MAX_CHARS`` characters, ``DEPTH_MAX`` nested groups, ``TERMS_MAX``
comparisons. Anything else is a 400 ``invalidFilter`` naming what is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from sluice.scim.errors import ScimError, invalid_filter

FILTER_MAX_CHARS = 1000
DEPTH_MAX = 8
TERMS_MAX = 40
OPERATORS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
SCHEMA_PREFIXES = (
    "urn:ietf:params:scim:schemas:core:2.0:user:",
    "urn:ietf:params:scim:schemas:core:2.0:group:",
)
CASE_EXACT = frozenset({"id", "externalid", "members.value", "groups.value", "meta.version"})
DATES = frozenset({"meta.created", "meta.lastmodified"})

_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<punct>[()\[\]])|(?P<word>[^\s()\[\]"]+))'
)


@dataclass(frozen=True, slots=True)
class Path:
    """``attr[where].sub``, names lower-cased; ``where`` filters the elements of ``attr``."""

    attr: str
    where: Node | None = None
    sub: str | None = None

    @property
    def dotted(self) -> str:
        return f"{self.attr}.{self.sub}" if self.sub else self.attr


@dataclass(frozen=True, slots=True)
class Compare:
    path: Path
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class Present:
    path: Path


@dataclass(frozen=True, slots=True)
class Logical:
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Not:
    node: Node


Node = Compare | Present | Logical | Not


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise invalid_filter(f"cannot read the filter at character {pos + 1}")
        out.append(match.group(match.lastgroup or "word"))
        pos = match.end()
    return out


class _Parser:
    def __init__(self, text: str, attributes: frozenset[str] | None) -> None:
        if len(text) > FILTER_MAX_CHARS:
            raise invalid_filter(f"the filter is longer than {FILTER_MAX_CHARS} characters")
        self.tokens = _tokens(text)
        self.pos = 0
        self.depth = 0
        self.terms = 0
        self.attributes = attributes

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise invalid_filter("the filter ends too early")
        self.pos += 1
        return token

    def expect(self, token: str) -> None:
        if self.peek() is None:
            raise invalid_filter(f"expected {token!r} but the filter ends")
        got = self.take()
        if got != token:
            raise invalid_filter(f"expected {token!r} in the filter, found {got[:40]!r}")

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token.lower() == word:
            self.pos += 1
            return True
        return False

    def filter(self) -> Node:
        self.depth += 1
        if self.depth > DEPTH_MAX:
            raise invalid_filter(f"the filter nests more than {DEPTH_MAX} levels")
        node = self.term()
        while self.keyword("or"):
            node = Logical("or", node, self.term())
        self.depth -= 1
        return node

    def term(self) -> Node:
        node = self.factor()
        while self.keyword("and"):
            node = Logical("and", node, self.factor())
        return node

    def factor(self) -> Node:
        if self.keyword("not"):
            self.expect("(")
            inner = self.filter()
            self.expect(")")
            return Not(inner)
        if self.peek() == "(":
            self.take()
            inner = self.filter()
            self.expect(")")
            return inner
        self.terms += 1
        if self.terms > TERMS_MAX:
            raise invalid_filter(f"the filter has more than {TERMS_MAX} comparisons")
        path = self.path(top=self.attributes is not None)
        following = self.peek()
        if (
            path.where is not None
            and path.sub is None
            and (following is None or following in (")", "]") or following.lower() in ("and", "or"))
        ):
            return Present(path)  # ``emails[type eq "work"]``: some element matches
        op = self.take().lower()
        if op == "pr":
            return Present(path)
        if op not in OPERATORS:
            raise invalid_filter(
                f"unknown operator {op[:20]!r} (use {', '.join(sorted(OPERATORS))} or pr)"
            )
        return _checked(Compare(path, op, _value(self.take())))

    def path(self, *, top: bool) -> Path:
        word = self.take()
        if word in "()[]" or word.startswith('"'):
            raise invalid_filter(f"expected an attribute name, found {word[:40]!r}")
        return parse_path_word(word, self, top=top)


def _checked(node: Compare) -> Compare:
    """Refuse what no attribute value could make sense of, before any resource is read."""
    name, value = node.path.dotted, node.value
    if isinstance(value, bool) and node.op not in ("eq", "ne"):
        raise invalid_filter(f"{name}: booleans are compared with eq or ne only")
    if node.op in ("co", "sw", "ew") and not isinstance(value, str):
        raise invalid_filter(f"{name}: {node.op} compares strings only")
    if name in DATES and value is not None:
        if not isinstance(value, str):
            raise invalid_filter(f"{name}: compare with a date-time string")
        _date(value, name)
    return node


def parse_path_word(word: str, parser: _Parser | None, *, top: bool) -> Path:
    """``word`` (and, after ``[``, the parser's tokens up to ``]``) as a :class:`Path`."""
    lowered = word.lower()
    for prefix in SCHEMA_PREFIXES:
        if lowered.startswith(prefix):
            lowered = lowered[len(prefix) :]
    if lowered.startswith("urn:"):  # an extension's attribute (e.g. enterprise:2.0:User)
        if top:
            raise invalid_filter(f"filtering on {word[:80]!r} is not supported")
        return Path(lowered)
    attr, _, sub = lowered.partition(".")
    where = None
    if parser is not None and parser.peek() == "[":
        parser.take()
        saved = parser.attributes
        parser.attributes = None  # names inside [...] are sub-attributes of ``attr``
        where = parser.filter()
        parser.attributes = saved
        parser.expect("]")
        following = parser.peek()
        if following is not None and following.startswith("."):
            sub = parser.take()[1:].lower()
    if not re.fullmatch(r"[a-z$][a-z0-9_$-]*", attr) or (
        sub and not re.fullmatch(r"[a-z$][a-z0-9_$-]*", sub)
    ):
        raise invalid_filter(f"{word[:60]!r} is not an attribute path")
    if (
        top
        and parser is not None
        and parser.attributes is not None
        and attr not in parser.attributes
    ):
        raise invalid_filter(f"filtering on {attr!r} is not supported")
    return Path(attr, where, sub or None)


def _value(token: str) -> Any:
    lowered = token.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    if token.startswith('"'):
        try:
            return orjson.loads(token)
        except orjson.JSONDecodeError:
            raise invalid_filter(f"{token[:40]} is not a valid string") from None
    try:
        number = float(token)
    except ValueError:
        raise invalid_filter(f"{token[:40]!r} is not a value (quote strings)") from None
    return int(number) if number.is_integer() and "." not in token else number


def parse_filter(text: str, *, attributes: frozenset[str]) -> Node:
    """The filter of a ``?filter=`` query; ``attributes``: the lower-cased top-level
    attributes of the resource type that may be filtered on."""
    parser = _Parser(text, attributes)
    node = parser.filter()
    if parser.peek() is not None:
        raise invalid_filter(f"unexpected {parser.peek()!r} in the filter")
    return node


def parse_path(text: str) -> Path:
    """A PATCH ``path`` (RFC 7644 §3.5.2): ``attr``, ``attr.sub``, ``attr[filter]``,
    ``attr[filter].sub``; errors are 400 ``invalidPath``."""
    try:
        parser = _Parser(text, None)
        path = parser.path(top=False)
        if parser.peek() is not None:
            raise invalid_filter(f"unexpected {parser.peek()!r}")
    except ScimError as exc:
        raise ScimError(400, f"path {text[:80]!r}: {exc.detail}", "invalidPath") from None
    return path


# evaluation ----------------------------------------------------------------------------------
def field(obj: Any, name: str) -> Any:
    """``obj[name]`` with the name compared case-insensitively (SCIM names are)."""
    if not isinstance(obj, dict):
        return None
    if name in obj:
        return obj[name]
    for key, value in obj.items():
        if key.lower() == name:
            return value
    return None


def values(resource: dict[str, Any], path: Path) -> list[Any]:
    """Every value ``path`` reaches in ``resource`` (multi-valued attributes flattened)."""
    found = field(resource, path.attr)
    items = found if isinstance(found, list) else ([] if found is None else [found])
    if path.where is not None:
        items = [
            i
            for i in items
            if isinstance(i, dict) and matches(i, path.where, prefix=f"{path.attr}.")
        ]
    if path.sub is not None:
        subs = [field(i, path.sub) for i in items]
        items = [v for s in subs for v in (s if isinstance(s, list) else [s]) if v is not None]
    return items


def matches(resource: dict[str, Any], node: Node, *, prefix: str = "") -> bool:
    if isinstance(node, Logical):
        left = matches(resource, node.left, prefix=prefix)
        if node.op == "and":
            return left and matches(resource, node.right, prefix=prefix)
        return left or matches(resource, node.right, prefix=prefix)
    if isinstance(node, Not):
        return not matches(resource, node.node, prefix=prefix)
    found = values(resource, node.path)
    if isinstance(node, Present):
        return any(v not in ("", [], {}) for v in found)
    name = prefix + node.path.dotted
    if node.op == "ne":
        return not any(_compare(v, "eq", node.value, name) for v in found)
    return any(_compare(v, node.op, node.value, name) for v in found)


def _compare(actual: Any, op: str, wanted: Any, name: str) -> bool:
    if isinstance(actual, dict):
        actual = field(actual, "value")
    if wanted is None:
        return op == "eq" and actual is None
    if isinstance(wanted, bool) or isinstance(actual, bool):
        if op != "eq":
            raise invalid_filter(f"{name}: booleans are compared with eq or ne only")
        return actual is wanted
    if isinstance(wanted, int | float):
        if not isinstance(actual, int | float):
            return False
        return _ordered(actual, op, wanted, name)
    if not isinstance(actual, str):
        return False
    if name in DATES:
        return _ordered(_date(actual, name), op, _date(wanted, name), name)
    got, text = str(actual), str(wanted)
    if name not in CASE_EXACT:
        got, text = got.lower(), text.lower()
    if op == "co":
        return text in got
    if op == "sw":
        return got.startswith(text)
    if op == "ew":
        return got.endswith(text)
    return _ordered(got, op, text, name)


def _ordered(actual: Any, op: str, wanted: Any, name: str) -> bool:
    if op == "eq":
        return bool(actual == wanted)
    if op in ("co", "sw", "ew"):
        raise invalid_filter(f"{name}: {op} compares strings only")
    return bool(
        {
            "gt": actual > wanted,
            "ge": actual >= wanted,
            "lt": actual < wanted,
            "le": actual <= wanted,
        }[op]
    )


def _date(text: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise invalid_filter(f"{name}: {text[:40]!r} is not a date-time") from None
    if value.tzinfo is None:
        raise invalid_filter(f"{name}: {text[:40]!r} has no time zone")
    return value
