"""Check the forge's HTTP exchanges against GitHub's own OpenAPI description.

The forge imitates GitHub's REST API v3 so that real clients (PyGithub, ``gh``, our own
code) can be tested against it. "Imitates" is only worth something if it is checked
against what GitHub *documents*, not against what we remember, so every response the
forge gives in tests goes through :meth:`Contract.validate`, which holds it to the
slice of GitHub's official OpenAPI 3.0.3 description vendored next to this module.

OpenAPI 3.0 schemas are *almost* JSON Schema (draft "Wright 00", between drafts 4 and
6). We convert the few places where they differ, once per document, into a draft 4
copy of the document and let :mod:`jsonschema` do the validation; ``$ref`` s resolve
inside that copy through a :mod:`referencing` registry, so refs keep pointing where
the original document says.
"""

from __future__ import annotations

import json
import re
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry
from referencing.jsonschema import DRAFT4

__all__ = ["Contract", "ContractError", "Operation"]

DEFAULT_DOCUMENT: Final = Path(__file__).parent / "reference" / "github-rest-openapi-subset.json"

# The converted document is registered under this URI; "#/components/..." refs inside it
# resolve against it. It is a name, never fetched.
_BASE_URI: Final = "urn:bzzz:forge:github-rest-openapi"

_HTTP_METHODS: Final = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})

# OpenAPI-only schema keywords. They carry documentation or code-generation hints, not
# constraints (``nullable`` is the exception and is translated, see _convert_schema).
# readOnly/writeOnly do affect ``required`` in OpenAPI (a readOnly property is not
# required in requests); the vendored slice uses neither, so they are simply dropped.
_OPENAPI_ONLY: Final = frozenset(
    {"example", "examples", "discriminator", "readOnly", "writeOnly", "deprecated", "externalDocs", "xml", "nullable"}
)
# Keywords whose value is a map of name -> subschema, a single subschema, or a list of them.
_SCHEMA_MAPS: Final = frozenset({"properties", "patternProperties", "definitions"})
_SCHEMA_SINGLE: Final = frozenset({"items", "additionalProperties", "not"})
_SCHEMA_LISTS: Final = frozenset({"allOf", "anyOf", "oneOf"})
# A nullable schema built from these cannot simply widen its "type": null must be
# offered as an alternative to the whole schema instead.
_COMPOSITES: Final = frozenset({"$ref", "allOf", "anyOf", "oneOf", "not"})

_JSON_MEDIA_TYPE: Final = "application/json"

# Bodies such as a full repository are kilobytes long; error messages quote them
# shortened, so the *reason* stays visible.
_repr = reprlib.Repr()  # keyword arguments to Repr() need Python 3.12
_repr.maxlevel, _repr.maxdict, _repr.maxlist, _repr.maxstring, _repr.maxother = 1, 4, 4, 40, 40
_short = _repr.repr


class ContractError(AssertionError):
    """An exchange GitHub's description does not allow.

    An AssertionError so that pytest reports it as a failed expectation, not a crash.
    """


@dataclass(frozen=True)
class Operation:
    """A documented operation, as matched for a concrete request path."""

    method: str  # upper case, e.g. "GET"
    template: str  # e.g. "/repos/{owner}/{repo}/issues/{issue_number}"
    operation_id: str | None  # GitHub's id, e.g. "issues/get"
    path_params: Mapping[str, str] = field(default_factory=dict)  # e.g. {"owner": "acme", ...}
    pointer: str = ""  # JSON pointer to the operation object in the document

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


@dataclass(frozen=True)
class _Route:
    template: str
    pattern: re.Pattern[str]
    # Sort key: one entry per template segment, 0 for a literal, 1 for a parameter,
    # 2 for a multi-segment parameter. The smallest key among the matches wins, so the
    # first segment where two templates differ decides, and a literal beats a parameter.
    rank: tuple[int, ...]
    operations: Mapping[str, Mapping[str, Any]]  # "GET" -> operation object


_LOADED: dict[tuple[type[Contract], Path], Contract] = {}


class Contract:
    """GitHub's REST API as described by an OpenAPI 3.0 document."""

    documented: set[tuple[str, str]]  # (METHOD, template) of every documented operation

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._document = document
        # A converted copy: the original stays as GitHub wrote it (examples, ref targets).
        converted = _convert_document(document)
        self._registry: Registry[Any] = Registry().with_resource(_BASE_URI, DRAFT4.create_resource(converted))
        self._validators: dict[str, Draft4Validator] = {}
        self._routes = [self._route(template, item) for template, item in document.get("paths", {}).items()]
        self.documented = {(method, route.template) for route in self._routes for method in route.operations}

    @classmethod
    def load(cls, path: Path | None = None) -> Contract:
        """The contract in ``path`` (default: the vendored GitHub subset), loaded once per process.

        Parsing and converting the description takes a noticeable moment and every test
        uses the same one, so loads are cached (a Contract does not change once built).
        """
        key = (cls, (path or DEFAULT_DOCUMENT).resolve())
        if key not in _LOADED:
            _LOADED[key] = cls(json.loads(key[1].read_text(encoding="utf-8")))
        return _LOADED[key]

    # -- routing -------------------------------------------------------------------

    def operation(self, method: str, path: str) -> Operation:
        """The operation serving ``method`` on the concrete ``path`` (query string ignored)."""
        method = method.upper()
        path = path.split("?", 1)[0].split("#", 1)[0]
        matches = [(route, m) for route in self._routes if (m := route.pattern.fullmatch(path))]
        if not matches:
            raise ContractError(f"{method} {path}: no documented path matches")
        # The path alone picks the route, as OpenAPI says ("concrete paths are matched
        # before their templated counterparts") and as GitHub routes: PATCH on
        # .../issues/events is an undocumented method there, not an issue named "events".
        route, match = min(matches, key=lambda rm: rm[0].rank)
        if method not in route.operations:
            raise ContractError(
                f"{method} {path}: method not documented for {route.template}; "
                f"documented: {', '.join(route.operations)}"
            )
        op = route.operations[method]
        return Operation(
            method=method,
            template=route.template,
            operation_id=op.get("operationId"),
            path_params=match.groupdict(),
            pointer=_pointer("paths", route.template, method.lower()),
        )

    def _route(self, template: str, item: Mapping[str, Any]) -> _Route:
        # GitHub marks parameters that may span several segments (a ref such as
        # "heads/feature-a", a branch with slashes) with x-multi-segment.
        operations = {m.upper(): op for m, op in item.items() if m in _HTTP_METHODS}
        parameters = [*item.get("parameters", []), *(p for op in operations.values() for p in op.get("parameters", []))]
        multi = {p["name"] for p in map(self._deref, parameters) if p.get("in") == "path" and p.get("x-multi-segment")}
        regex, rank = [], []
        for segment in template.strip("/").split("/"):
            if name := re.fullmatch(r"\{(\w+)\}", segment):
                regex.append(f"(?P<{name[1]}>.+)" if name[1] in multi else f"(?P<{name[1]}>[^/]+)")
                rank.append(2 if name[1] in multi else 1)
            else:
                regex.append(re.escape(segment))
                rank.append(0)
        return _Route(template, re.compile("/" + "/".join(regex)), tuple(rank), operations)

    # -- validation ----------------------------------------------------------------

    def validate(
        self,
        method: str,
        path: str,
        status: int,
        body: object | None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Raise ContractError unless GitHub documents this response to this request.

        ``body`` is the decoded JSON body, or None (or b"" / "") when there was none.
        Formats (date-time, uri, ...) are not checked: GitHub's own examples break them.
        """
        op = self.operation(method, path)
        where = f"{op} -> {status}"
        response, pointer = self._response(op, status, where)
        lowered = {name.lower() for name in (headers or {})}
        for name, header in response.get("headers", {}).items():
            if self._deref(header).get("required") and name.lower() not in lowered:
                raise ContractError(f"{where}: missing required response header {name!r}")
        content = response.get("content")
        if not content:
            # 204, 304 and the like: the description promises no body at all.
            if body not in (None, b"", ""):
                raise ContractError(f"{where}: documented without a body, but got {_short(body)}")
            return
        # A response documented only in other media types (text/plain, a diff) has no
        # JSON schema to hold a decoded body to; it is not checked further.
        if _JSON_MEDIA_TYPE in content and "schema" in content[_JSON_MEDIA_TYPE]:
            self._check(pointer + _pointer("content", _JSON_MEDIA_TYPE, "schema"), body, where)

    def validate_request(self, method: str, path: str, body: object) -> None:
        """Raise ContractError unless ``body`` is a request body the operation documents."""
        op = self.operation(method, path)
        where = f"{op} request"
        operation = _resolve(self._document, op.pointer)
        request_body, pointer = self._deref_at(operation.get("requestBody"), op.pointer + "/requestBody")
        if request_body is None:
            if body is not None:
                raise ContractError(f"{where}: no request body documented, but got {_short(body)}")
            return
        if body is None:
            if request_body.get("required"):
                raise ContractError(f"{where}: a request body is required")
            return
        media = request_body.get("content", {}).get(_JSON_MEDIA_TYPE)
        if media is None:
            raise ContractError(f"{where}: no {_JSON_MEDIA_TYPE} request body documented")
        if "schema" in media:
            self._check(pointer + _pointer("content", _JSON_MEDIA_TYPE, "schema"), body, where)

    def _response(self, op: Operation, status: int, where: str) -> tuple[Mapping[str, Any], str]:
        """The documented response for ``status``: exact code, then range ("2XX"), then "default"."""
        responses: Mapping[str, Any] = _resolve(self._document, op.pointer)["responses"]
        by_code = {str(code).upper(): str(code) for code in responses}
        for candidate in (str(status), f"{str(status)[0]}XX", "DEFAULT"):
            if candidate in by_code:
                key = by_code[candidate]
                resolved, pointer = self._deref_at(responses[key], op.pointer + _pointer("responses", key))
                assert resolved is not None
                return resolved, pointer
        raise ContractError(f"{where}: status not documented; documented: {', '.join(responses)}")

    def validate_schema(self, name: str, instance: object) -> None:
        """Validate against one component schema, e.g. where a response's own schema is too loose
        to say anything (timeline items: two of its `anyOf` alternatives require nothing)."""
        self._check(_pointer("components", "schemas", name), instance, f"schema {name}")

    def _check(self, schema_pointer: str, instance: object, where: str) -> None:
        error = best_match(self._validator(schema_pointer).iter_errors(instance))
        if error is None:
            return
        message = f"{where}: {error.json_path}: {_describe(error)}"
        if hint := _closest_alternative(error):
            message += f"; {hint}"
        raise ContractError(message)

    def _validator(self, schema_pointer: str) -> Draft4Validator:
        # Validate through a $ref into the registered (converted) document rather than a
        # copy of the subschema, so the subschema's own "#/components/..." refs resolve.
        if schema_pointer not in self._validators:
            ref = f"{_BASE_URI}#{quote(schema_pointer, safe='/~')}"
            self._validators[schema_pointer] = Draft4Validator({"$ref": ref}, registry=self._registry)
        return self._validators[schema_pointer]

    # -- $ref outside schemas (responses, parameters, headers, request bodies) --------

    def _deref(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        resolved, _ = self._deref_at(node, "")
        assert resolved is not None
        return resolved

    def _deref_at(self, node: Mapping[str, Any] | None, pointer: str) -> tuple[Mapping[str, Any] | None, str]:
        """Follow ``$ref`` s from ``node`` (found at ``pointer``); return the target and where it is."""
        seen: set[str] = set()
        while node is not None and "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/") or ref in seen:
                raise ContractError(f"unsupported or circular $ref {ref!r} at {pointer or 'document'}")
            seen.add(ref)
            pointer = ref[1:]
            node = _resolve(self._document, pointer)
        return node, pointer


def _convert_document(node: Any) -> Any:
    """A copy of an OpenAPI document in which every schema is converted to draft 4.

    Schemas sit under "schema" keys (parameters, headers, media types) and in
    components/schemas. Examples are data, not schemas, and are left alone.
    """
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "schema":
                out[key] = _convert_schema(value)
            elif key == "schemas" and isinstance(value, Mapping):
                out[key] = {name: _convert_schema(s) for name, s in value.items()}
            elif key in ("example", "examples") or key.startswith("x-"):
                out[key] = value
            else:
                out[key] = _convert_document(value)
        return out
    if isinstance(node, list):
        return [_convert_document(value) for value in node]
    return node


def _convert_schema(schema: Any) -> Any:
    """Translate one OpenAPI 3.0 schema object into JSON Schema draft 4.

    Draft 4 is the closest draft: boolean exclusiveMinimum/Maximum, and siblings of
    "$ref" are ignored, exactly as OpenAPI 3.0 says.
    """
    if not isinstance(schema, Mapping):
        return schema  # additionalProperties: true/false
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _OPENAPI_ONLY or key.startswith("x-"):
            continue
        if key in _SCHEMA_MAPS:
            out[key] = {name: _convert_schema(sub) for name, sub in value.items()}
        elif key in _SCHEMA_SINGLE:
            out[key] = _convert_schema(value)
        elif key in _SCHEMA_LISTS:
            out[key] = [_convert_schema(sub) for sub in value]
        else:
            out[key] = value
    if schema.get("nullable") is True:
        return _allow_null(out)
    return out


def _allow_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``nullable: true``: null is allowed in addition to what the schema allows."""
    if _COMPOSITES & schema.keys():
        # "$ref" ignores its siblings and the composites constrain the whole value, so
        # widening a keyword in place would not let null through: offer it beside them.
        return {"anyOf": [{"type": "null"}, schema]}
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        schema["type"] = [*types, "null"] if "null" not in types else types
    if "enum" in schema and None not in schema["enum"]:
        # GitHub writes nullable enums without null among the values; they mean null is fine.
        schema["enum"] = [*schema["enum"], None]
    return schema


def _resolve(document: Mapping[str, Any], pointer: str) -> Any:
    """The node at a JSON pointer (RFC 6901) such as "/components/responses/not_found"."""
    node: Any = document
    for token in pointer.split("/")[1:]:
        node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


def _pointer(*tokens: str) -> str:
    return "".join("/" + token.replace("~", "~0").replace("/", "~1") for token in tokens)


def _closest_alternative(error: ValidationError) -> str | None:
    """For "not valid under any of the given schemas": what the nearest alternative wanted.

    best_match stops at an anyOf/oneOf when its alternatives fail equally deep, which
    says nothing useful ("not valid under any of ..."). GitHub uses these for events,
    timelines and GET /user; the alternative with the fewest complaints is almost always
    the one the body meant to be, so its first complaint is the one worth reading.
    """
    if error.validator not in ("anyOf", "oneOf") or not error.context:
        return None
    alternatives: list[Any] = error.validator_value
    by_branch: dict[int, list[ValidationError]] = {}
    for sub in error.context:
        by_branch.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
    # An alternative of another type altogether (the null offered by nullable, a string
    # where an object was sent) is not a near miss.
    near = {
        index: errors
        for index, errors in by_branch.items()
        if not (len(errors) == 1 and errors[0].validator == "type" and not errors[0].relative_path)
    }
    if not near:
        return f"alternatives: {', '.join(_name(alternative) for alternative in alternatives)}"
    index, errors = min(near.items(), key=lambda item: len(item[1]))
    best = best_match(errors)
    assert best is not None
    return f"closest alternative {_name(alternatives[index])}: {best.json_path}: {_describe(best)}"


def _name(schema: Any) -> str:
    """A schema as a reader knows it: the component it refers to, or its type."""
    if isinstance(schema, Mapping) and "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if isinstance(schema, Mapping) and "type" in schema:
        return "|".join(schema["type"]) if isinstance(schema["type"], list) else str(schema["type"])
    return str(_short(schema))


def _describe(error: ValidationError) -> str:
    """jsonschema's message, with the offending value quoted short enough to read."""
    message = str(error.message)
    full = repr(error.instance)
    if len(full) > 80 and full in message:
        message = message.replace(full, str(_short(error.instance)), 1)
    return message
