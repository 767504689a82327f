"""The contract validator: what it accepts, what it rejects, and what it says when it rejects.

Everything the forge answers is checked by tests/forge/contract.py, so the checker has to
be right in both directions: GitHub's own examples must pass (or the checker is stricter
than GitHub), and small corruptions of them must fail with a message that points at the
broken field (or the checker is useless).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from tests.forge.contract import DEFAULT_DOCUMENT, Contract, ContractError

# Loaded (and converted) once per process: Contract.load caches.
CONTRACT = Contract.load()
DOCUMENT: Mapping[str, Any] = json.loads(DEFAULT_DOCUMENT.read_text(encoding="utf-8"))
EXAMPLES: Mapping[str, Any] = DOCUMENT["components"]["examples"]

# Concrete values for path parameters, the way GitHub's docs spell them.
SAMPLE_PARAMS = {
    "owner": "octocat",
    "repo": "Hello-World",
    "issue_number": "1347",
    "pull_number": "1347",
    "comment_id": "42",
    "assignee": "hubot",
    "name": "bug",
    "branch": "main",
    "ref": "heads/feature-a",
}

# Official examples that contradict their own schema. The validator is right to reject
# them (test_known_bad_examples_are_rejected_for_the_documented_reason pins that); they
# are skipped as "valid bodies", not made to pass by weakening the validator.
KNOWN_BAD = {
    # full-repository-default-response omits "language", which full-repository requires
    # (both at the top level and in its "source" repository).
    ("GET", "/repos/{owner}/{repo}", "200", "default-response"): "'language' is a required property",
    # The full-repository example predates the required "has_discussions" field.
    ("PATCH", "/repos/{owner}/{repo}", "200", "default"): "'has_discussions' is a required property",
    ("POST", "/repos/{owner}/{repo}/forks", "202", "default"): "'has_discussions' is a required property",
    # The pull-request examples' requested_teams lack "type", which team-simple requires.
    ("GET", "/repos/{owner}/{repo}/pulls", "200", "default"): "'type' is a required property",
    ("POST", "/repos/{owner}/{repo}/pulls", "201", "default"): "'type' is a required property",
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}", "200", "default"): "'type' is a required property",
    ("PATCH", "/repos/{owner}/{repo}/pulls/{pull_number}", "200", "default"): "'type' is a required property",
}


def concrete(template: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE_PARAMS[m[1]], template)


def example_value(example: Mapping[str, Any]) -> Any:
    """The data of an Example Object, following GitHub's refs.

    GitHub refs whole Example Objects ({"$ref": "#/components/examples/issue"}) and, for
    GET .../issues/{issue_number}, puts the ref inside "value" ({"value": {"$ref": ...}}); both mean the
    value of the referenced example.
    """
    while "$ref" in example:
        example = EXAMPLES[example["$ref"].rsplit("/", 1)[1]]
    value = example["value"]
    if isinstance(value, dict) and set(value) == {"$ref"}:
        return example_value(value)
    return value


def official_examples() -> Iterator[tuple[str, str, str, str, Any]]:
    """(method, template, status, example name, body) for every response example in the document."""
    for template, item in DOCUMENT["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            for status, response in op["responses"].items():
                media = response.get("content", {}).get("application/json", {})
                for name, example in media.get("examples", {}).items():
                    yield method.upper(), template, status, name, example_value(example)


def official_request_examples() -> Iterator[tuple[str, str, str, Any]]:
    for template, item in DOCUMENT["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            media = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            for name, example in media.get("examples", {}).items():
                yield method.upper(), template, name, example_value(example)


def example(name: str) -> Any:
    """A private copy of a named component example, free to mutate."""
    return copy.deepcopy(EXAMPLES[name]["value"])


def rejects(method: str, path: str, status: int, body: object, headers: Mapping[str, str] | None = None) -> str:
    """The ContractError message for a response that must be rejected."""
    with pytest.raises(ContractError) as caught:
        CONTRACT.validate(method, path, status, body, headers)
    return str(caught.value)


ISSUE = "/repos/octocat/Hello-World/issues/1347"
ISSUE_GET = "GET /repos/{owner}/{repo}/issues/{issue_number}"
ISSUE_OP = f"{ISSUE_GET} -> 200"


# -- loading and coverage --------------------------------------------------------------


def test_load_reads_the_vendored_document_once() -> None:
    assert Contract.load() is CONTRACT
    assert Contract.load(DEFAULT_DOCUMENT) is CONTRACT


def test_documented_lists_every_operation_as_method_and_template() -> None:
    expected = {
        (method.upper(), template)
        for template, item in DOCUMENT["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert CONTRACT.documented == expected
    assert len(CONTRACT.documented) == 39
    assert ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/assignees") in CONTRACT.documented
    assert ("GET", "/rate_limit") in CONTRACT.documented
    assert ("PUT", "/rate_limit") not in CONTRACT.documented


def test_building_a_contract_leaves_the_document_untouched() -> None:
    # The conversion works on a copy: the original keeps "nullable", examples and refs.
    document = json.loads(DEFAULT_DOCUMENT.read_text(encoding="utf-8"))
    pristine = copy.deepcopy(document)
    Contract(document).validate("GET", ISSUE, 200, example("issue"))
    assert document == pristine


# -- routing ---------------------------------------------------------------------------


def test_a_concrete_path_finds_its_template_and_parameters() -> None:
    op = CONTRACT.operation("get", "/repos/acme/widgets/issues/12")
    assert (op.method, op.operation_id) == ("GET", "issues/get")
    assert op.template == "/repos/{owner}/{repo}/issues/{issue_number}"
    assert op.path_params == {"owner": "acme", "repo": "widgets", "issue_number": "12"}
    assert str(op) == "GET /repos/{owner}/{repo}/issues/{issue_number}"


def test_a_literal_segment_beats_a_templated_one() -> None:
    comment = CONTRACT.operation("GET", "/repos/acme/widgets/issues/comments/99")
    assert comment.template == "/repos/{owner}/{repo}/issues/comments/{comment_id}"
    events = CONTRACT.operation("GET", "/repos/acme/widgets/issues/events")
    assert events.template == "/repos/{owner}/{repo}/issues/events"
    # Both templates match ".../issues/comments/comments"; the earlier literal decides.
    assert CONTRACT.operation("GET", "/repos/acme/widgets/issues/comments/comments").template == comment.template
    assert CONTRACT.operation("GET", "/repos/acme/widgets/issues/12/comments").template == (
        "/repos/{owner}/{repo}/issues/{issue_number}/comments"
    )


def test_the_path_alone_picks_the_route_then_the_method_must_be_documented_there() -> None:
    # PATCH .../issues/events is not "edit issue number 'events'": the literal route wins.
    with pytest.raises(ContractError, match=r"PATCH /repos/acme/widgets/issues/events: method not documented"):
        CONTRACT.operation("PATCH", "/repos/acme/widgets/issues/events")


def test_the_query_string_is_ignored() -> None:
    op = CONTRACT.operation("GET", "/repos/acme/widgets/issues?state=all&per_page=100")
    assert op.template == "/repos/{owner}/{repo}/issues"


def test_multi_segment_parameters_may_contain_slashes() -> None:
    # GitHub marks {ref} and {branch} with x-multi-segment: "heads/feature-a" is one ref.
    ref = CONTRACT.operation("GET", "/repos/acme/widgets/git/ref/heads/feature/a")
    assert ref.path_params["ref"] == "heads/feature/a"
    branch = CONTRACT.operation("GET", "/repos/acme/widgets/branches/release/1.0")
    assert branch.path_params["branch"] == "release/1.0"


def test_ordinary_parameters_are_one_segment() -> None:
    with pytest.raises(ContractError, match="no documented path matches"):
        CONTRACT.operation("DELETE", "/repos/acme/widgets/issues/12/labels/area/ui")


@pytest.mark.parametrize("path", ["/repos/acme", "/repos/acme/widgets/wiki", "/user/", "/users/octocat"])
def test_an_undocumented_path_is_a_contract_error(path: str) -> None:
    with pytest.raises(ContractError, match=f"GET {re.escape(path)}: no documented path matches"):
        CONTRACT.validate("GET", path, 200, {})


def test_an_undocumented_method_is_a_contract_error_naming_the_documented_ones() -> None:
    with pytest.raises(ContractError) as caught:
        CONTRACT.operation("DELETE", "/user")
    assert str(caught.value) == "DELETE /user: method not documented for /user; documented: GET, PATCH"


# -- GitHub's own examples -------------------------------------------------------------


def _example_params() -> list[Any]:
    params = []
    for method, template, status, name, body in official_examples():
        reason = KNOWN_BAD.get((method, template, status, name))
        marks = [pytest.mark.skip(reason=f"GitHub's example contradicts its schema: {reason}")] if reason else []
        test_id = f"{method} {template} {status} {name}"
        params.append(pytest.param(method, template, status, body, id=test_id, marks=marks))
    return params


@pytest.mark.parametrize(("method", "template", "status", "body"), _example_params())
def test_official_response_examples_are_valid(method: str, template: str, status: str, body: Any) -> None:
    CONTRACT.validate(method, concrete(template), int(status), body)


@pytest.mark.parametrize(
    ("method", "template", "body"),
    [pytest.param(m, t, body, id=f"{m} {t} {name}") for m, t, name, body in official_request_examples()],
)
def test_official_request_examples_are_valid(method: str, template: str, body: Any) -> None:
    CONTRACT.validate_request(method, concrete(template), body)


def test_the_examples_cover_most_operations() -> None:
    # Guards the parametrization above against silently finding nothing.
    covered = {(method, template) for method, template, *_ in official_examples()}
    assert len(covered) >= 30
    assert len(list(official_request_examples())) >= 15


def test_known_bad_examples_are_rejected_for_the_documented_reason() -> None:
    # If GitHub fixes an example, this fails: drop it from KNOWN_BAD so it is tested again.
    found = {(m, t, s, n): body for m, t, s, n, body in official_examples()}
    for (method, template, status, name), reason in KNOWN_BAD.items():
        with pytest.raises(ContractError, match=re.escape(reason)):
            CONTRACT.validate(method, concrete(template), int(status), found[(method, template, status, name)])


# -- corrupted examples: what is rejected, and how it is reported ----------------------


def test_a_message_names_operation_status_json_path_and_expectation() -> None:
    issue = example("issue")
    issue["user"]["login"] = None
    assert rejects("GET", ISSUE, 200, issue) == f"{ISSUE_OP}: $.user.login: None is not of type 'string'"


def test_a_missing_required_field_is_rejected() -> None:
    issue = example("issue")
    del issue["title"]
    assert rejects("GET", ISSUE, 200, issue) == f"{ISSUE_OP}: $: 'title' is a required property"


def test_a_missing_required_field_in_a_nested_object_is_rejected() -> None:
    issue = example("issue")
    del issue["labels"][0]["name"]  # issue labels are strings or objects; objects need no name
    CONTRACT.validate("GET", ISSUE, 200, issue)
    del issue["user"]["id"]
    assert rejects("GET", ISSUE, 200, issue) == f"{ISSUE_OP}: $.user: 'id' is a required property"


def test_a_wrong_type_is_rejected() -> None:
    issue = example("issue")
    issue["number"] = "1347"
    assert rejects("GET", ISSUE, 200, issue) == f"{ISSUE_OP}: $.number: '1347' is not of type 'integer'"


def test_an_integral_float_is_not_an_integer() -> None:
    # Draft 4 semantics: 1347.0 is a number, not an integer. Our JSON must say 1347.
    issue = example("issue")
    issue["number"] = 1347.0
    assert "$.number: 1347.0 is not of type 'integer'" in rejects("GET", ISSUE, 200, issue)


def test_null_is_rejected_where_the_schema_is_not_nullable() -> None:
    issue = example("issue")
    issue["state"] = None
    assert rejects("GET", ISSUE, 200, issue) == f"{ISSUE_OP}: $.state: None is not of type 'string'"


def test_a_value_outside_an_enum_is_rejected() -> None:
    issue = example("issue")
    issue["author_association"] = "BOSS"
    message = rejects("GET", ISSUE, 200, issue)
    assert message.startswith(f"{ISSUE_OP}: $.author_association: 'BOSS' is not one of [")
    assert "'COLLABORATOR'" in message


def test_errors_inside_arrays_carry_the_index() -> None:
    labels = example("label-items")
    labels[1]["default"] = "yes"
    message = rejects("GET", "/repos/octocat/Hello-World/labels", 200, labels)
    assert message == "GET /repos/{owner}/{repo}/labels -> 200: $[1].default: 'yes' is not of type 'boolean'"


def test_a_wrong_top_level_type_is_reported_with_the_body_shortened() -> None:
    # A list where an object is due: the message must stay readable, not dump the body.
    message = rejects("GET", ISSUE, 200, [example("issue")])
    assert message.startswith(f"{ISSUE_OP}: $: [")
    assert message.endswith("is not of type 'object'")
    assert len(message) < 400


def test_an_undocumented_status_is_rejected_with_the_documented_ones() -> None:
    message = rejects("GET", ISSUE, 418, {"message": "I'm a teapot"})
    assert message == f"{ISSUE_GET} -> 418: status not documented; documented: 200, 301, 304, 404, 410"


def test_a_body_on_a_response_documented_without_content_is_rejected() -> None:
    path = "/repos/octocat/Hello-World/issues/comments/42"
    CONTRACT.validate("DELETE", path, 204, None)
    CONTRACT.validate("DELETE", path, 204, b"")
    message = rejects("DELETE", path, 204, {"message": "deleted"})
    assert message == (
        "DELETE /repos/{owner}/{repo}/issues/comments/{comment_id} -> 204: "
        "documented without a body, but got {'message': 'deleted'}"
    )
    # An empty JSON object is still a body ("{}"), not an empty one.
    rejects("DELETE", path, 204, {})


def test_not_modified_has_no_body() -> None:
    CONTRACT.validate("GET", "/user", 304, None)
    rejects("GET", "/user", 304, example("private-user"))


def test_a_missing_body_is_rejected_where_json_is_documented() -> None:
    assert rejects("GET", ISSUE, 200, None) == f"{ISSUE_OP}: $: None is not of type 'object'"


def test_error_responses_are_checked_through_shared_component_responses() -> None:
    # 404 is {"$ref": "#/components/responses/not_found"}, a basic-error body.
    not_found = {"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"}
    CONTRACT.validate("GET", ISSUE, 404, not_found)
    assert rejects("GET", ISSUE, 404, {"message": 404}) == f"{ISSUE_GET} -> 404: $.message: 404 is not of type 'string'"
    labels = "/repos/octocat/Hello-World/labels"
    failed: dict[str, Any] = {"message": "Validation Failed", "documentation_url": "https://docs.github.com/rest"}
    failed["errors"] = [{"resource": "Label", "code": "missing_field", "field": "name"}]
    CONTRACT.validate("POST", labels, 422, failed)  # 422 is components/responses/validation_failed
    del failed["documentation_url"]
    assert "-> 422: $: 'documentation_url' is a required property" in rejects("POST", labels, 422, failed)


# -- OpenAPI dialect: nullable, formats, additionalProperties -------------------------


def test_nullable_fields_accept_null() -> None:
    issue = example("issue")
    issue["closed_at"] = None  # a nullable string
    issue["milestone"] = None  # $ref to an object schema that is itself nullable
    issue["user"] = None  # $ref nullable-simple-user
    issue["body"] = None
    CONTRACT.validate("GET", ISSUE, 200, issue)


def test_nullable_enums_accept_null_but_not_other_values() -> None:
    issue = example("issue")
    issue["state_reason"] = None  # nullable enum whose values do not list null
    CONTRACT.validate("GET", ISSUE, 200, issue)
    issue["state_reason"] = "wontfix"
    assert "$.state_reason: 'wontfix' is not one of ['completed'" in rejects("GET", ISSUE, 200, issue)


def test_nullable_composites_accept_null_and_still_check_the_alternatives() -> None:
    # commit.author is {"nullable": true, "oneOf": [simple-user, empty-object]}.
    path = "/repos/octocat/Hello-World/branches/main"
    branch = example("branch-get")
    branch["commit"]["author"] = None
    CONTRACT.validate("GET", path, 200, branch)
    branch["commit"]["author"] = {}
    CONTRACT.validate("GET", path, 200, branch)
    branch["commit"]["author"] = "octocat"
    assert rejects("GET", path, 200, branch) == (
        "GET /repos/{owner}/{repo}/branches/{branch} -> 200: $.commit.author: "
        "'octocat' is not valid under any of the given schemas; alternatives: simple-user, empty-object"
    )


def test_formats_are_not_enforced() -> None:
    # GitHub's own examples break "uri"/"date-time" here and there; formats are documentation.
    issue = example("issue")
    issue["created_at"] = "last Tuesday"
    issue["html_url"] = "not a uri"
    CONTRACT.validate("GET", ISSUE, 200, issue)
    user = example("private-user")
    user["email"] = "octocat at github"  # "email" is a format jsonschema could check
    CONTRACT.validate("PATCH", "/user", 200, user)


def test_undocumented_extra_fields_are_allowed_unless_the_schema_forbids_them() -> None:
    issue = example("issue")
    issue["forge_internal"] = True  # issue says nothing about additionalProperties
    CONTRACT.validate("GET", ISSUE, 200, issue)
    # public-user says additionalProperties: false, so GET /user must be one or the other.
    public = example("private-user-response-with-public-profile-information")
    CONTRACT.validate("GET", "/user", 200, public)
    public["forge_internal"] = True
    message = rejects("GET", "/user", 200, public)
    assert message.startswith("GET /user -> 200: $: {'avatar_url': ")
    assert message.endswith(
        "is not valid under any of the given schemas; "
        "closest alternative public-user: $: Additional properties are not allowed ('forge_internal' was unexpected)"
    )


def test_for_alternatives_the_message_says_what_the_nearest_one_wanted() -> None:
    # Issue events are an anyOf of ~20 event shapes; "valid under none" alone would not help.
    events = example("issue-event-for-issue-items")
    del events[0]["event"]
    message = rejects("GET", f"{ISSUE}/events", 200, events)
    assert message.endswith("closest alternative labeled-issue-event: $[0]: 'event' is a required property")
    assert len(message) < 600  # the event itself is quoted shortened


def test_oneof_is_exclusive_even_where_github_made_every_alternative_nullable() -> None:
    # validation-error's errors[].value is oneOf [nullable string, nullable integer,
    # nullable array]: a literal reading lets null match all three, so oneOf rejects it.
    # The forge must leave "value" out rather than send null.
    labels = "/repos/octocat/Hello-World/labels"
    failed: dict[str, Any] = {"message": "Validation Failed", "documentation_url": "https://docs.github.com/rest"}
    failed["errors"] = [{"code": "invalid", "field": "color"}]
    CONTRACT.validate("POST", labels, 422, failed)
    failed["errors"][0]["value"] = None
    assert "$.errors[0].value: None is valid under each of" in rejects("POST", labels, 422, failed)


# -- headers, status ranges and default (the vendored slice has none: a small document) --


def tiny_document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "tiny", "version": "1"},
        "paths": {
            "/things/{id}": {
                "get": {
                    "operationId": "things/get",
                    "responses": {
                        "200": {
                            "description": "A thing",
                            "headers": {
                                "ETag": {"required": True, "schema": {"type": "string"}},
                                "Link": {"$ref": "#/components/headers/link"},
                            },
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/thing"}}},
                        },
                        "2XX": {
                            "description": "Other success",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "default": {"$ref": "#/components/responses/error"},
                    },
                }
            }
        },
        "components": {
            "headers": {"link": {"required": True, "schema": {"type": "string"}}},
            "responses": {
                "error": {
                    "description": "Any error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/error"}}},
                }
            },
            "schemas": {
                "thing": {
                    "type": "object",
                    "required": ["id", "colour", "owner"],
                    "properties": {
                        "id": {"type": "integer"},
                        "colour": {"nullable": True, "enum": ["red", "blue"]},
                        "owner": {"nullable": True, "allOf": [{"$ref": "#/components/schemas/error"}]},
                        "example": {"type": "string", "example": 3, "x-note": "a property named like a keyword"},
                    },
                },
                "error": {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}},
            },
        },
    }


TINY_HEADERS = {"etag": '"abc"', "LINK": '<https://example.test/things?page=2>; rel="next"'}


def test_required_response_headers_must_be_present_in_any_case() -> None:
    tiny = Contract(tiny_document())
    thing = {"id": 1, "colour": "red", "owner": None}
    tiny.validate("GET", "/things/1", 200, thing, TINY_HEADERS)
    with pytest.raises(ContractError) as caught:
        tiny.validate("GET", "/things/1", 200, thing, {"ETag": '"abc"'})
    assert str(caught.value) == "GET /things/{id} -> 200: missing required response header 'Link'"
    with pytest.raises(ContractError, match="missing required response header 'ETag'"):
        tiny.validate("GET", "/things/1", 200, thing, None)


def test_status_ranges_and_default_cover_what_is_not_listed_exactly() -> None:
    tiny = Contract(tiny_document())
    tiny.validate("GET", "/things/1", 206, "partial")  # 2XX, text/plain: body not checked
    tiny.validate("GET", "/things/1", 503, {"message": "down"})  # default, via components/responses
    with pytest.raises(ContractError, match=r"GET /things/\{id\} -> 404: \$: 'message' is a required property"):
        tiny.validate("GET", "/things/1", 404, {})


def test_nullable_without_type_and_nullable_allof() -> None:
    tiny = Contract(tiny_document())
    tiny.validate("GET", "/things/1", 200, {"id": 1, "colour": None, "owner": {"message": "hi"}}, TINY_HEADERS)
    with pytest.raises(ContractError, match=r"\$\.colour: 'green' is not one of \['red', 'blue', None\]"):
        tiny.validate("GET", "/things/1", 200, {"id": 1, "colour": "green", "owner": None}, TINY_HEADERS)
    with pytest.raises(ContractError, match=r"\$\.owner"):
        tiny.validate("GET", "/things/1", 200, {"id": 1, "colour": "red", "owner": {}}, TINY_HEADERS)


def test_openapi_only_keywords_are_ignored_but_properties_named_like_them_are_not() -> None:
    tiny = Contract(tiny_document())
    thing = {"id": 1, "colour": "red", "owner": None, "example": "fine"}
    tiny.validate("GET", "/things/1", 200, thing, TINY_HEADERS)  # "example": 3 is not a constraint
    thing["example"] = 3
    with pytest.raises(ContractError, match=r"\$\.example: 3 is not of type 'string'"):
        tiny.validate("GET", "/things/1", 200, thing, TINY_HEADERS)


# -- request bodies --------------------------------------------------------------------


def test_request_bodies_are_checked_against_the_request_schema() -> None:
    issues = "/repos/octocat/Hello-World/issues"
    CONTRACT.validate_request("POST", issues, {"title": "Found a bug", "labels": ["bug", {"name": "ui"}]})
    with pytest.raises(ContractError) as caught:
        CONTRACT.validate_request("POST", issues, {"body": "no title"})
    assert str(caught.value) == "POST /repos/{owner}/{repo}/issues request: $: 'title' is a required property"
    with pytest.raises(ContractError, match=r"request: \$\.labels: 'bug' is not of type 'array'"):
        CONTRACT.validate_request("POST", issues, {"title": "x", "labels": "bug"})
    with pytest.raises(ContractError) as caught:
        CONTRACT.validate_request("POST", issues, {"title": None})
    assert str(caught.value) == (
        "POST /repos/{owner}/{repo}/issues request: $.title: "
        "None is not valid under any of the given schemas; alternatives: string, integer"
    )


def test_a_required_request_body_must_be_present_and_an_undocumented_one_absent() -> None:
    required = "POST /repos/{owner}/{repo}/issues request: a request body is required"
    with pytest.raises(ContractError, match=re.escape(required)):
        CONTRACT.validate_request("POST", "/repos/octocat/Hello-World/issues", None)
    CONTRACT.validate_request("PATCH", "/user", None)  # optional body
    CONTRACT.validate_request("GET", "/user", None)
    with pytest.raises(ContractError, match="GET /user request: no request body documented"):
        CONTRACT.validate_request("GET", "/user", {"login": "octocat"})
