"""The checks of the spec itself, before any daemon runs (it is OpenAPI 3.1, its schemas and
references are sound, its codes and classes are those of the Swift sources, every operation
documents the refusals of its kind), and those of the spec against the whole run, after it (the
request schemas agree with the daemon's verdicts, every operation was exercised)."""

from __future__ import annotations

import json
import re

from jsonschema import Draft202012Validator

from .common import REPO, Checker, escape


def static_checks(checker: Checker):
    """The spec alone, in this order."""
    spec_version(checker)
    schemas_and_references(checker)
    enums_match_the_sources(checker)
    documented_codes_are_problem_codes(checker)
    documented_refusals_of_each_kind(checker)


def spec_version(checker: Checker):
    """The document is OpenAPI 3.1, which the validation below assumes (JSON Schema 2020-12)."""
    spec = checker.spec
    problems = []
    version = str(spec.doc.get("openapi", ""))
    if not version.startswith("3.1."):
        problems.append("openapi is %r, expected 3.1.x" % version)
    checker.record("spec: OpenAPI 3.1 document", problems)


def schemas_and_references(checker: Checker):
    """Every schema is a valid 2020-12 schema and every $ref in the document resolves."""
    spec = checker.spec
    problems = []
    for name, schema in spec.doc.get("components", {}).get("schemas", {}).items():
        try:
            Draft202012Validator.check_schema(schema)
        except Exception as error:
            problems.append("schema %s: %s" % (name, getattr(error, "message", error)))

    def walk(node, pointer):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                try:
                    spec.at(ref[1:]) if ref.startswith("#/") else problems.append("non-local $ref %s" % ref)
                except (KeyError, IndexError, ValueError):
                    problems.append("unresolved $ref %s at %s" % (ref, pointer))
            for key, value in node.items():
                walk(value, pointer + "/" + escape(str(key)))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, "%s/%d" % (pointer, index))
    walk(spec.doc, "")
    checker.record("spec: schemas valid, every $ref resolves", problems)


def enums_match_the_sources(checker: Checker):
    """Error codes and classes are those of the Swift sources."""
    spec = checker.spec
    sources = {
        "Problem.code lists every ErrorCode raw value": (
            REPO / "Sources/CoffreAPI/Errors/ErrorCode.swift", "/components/schemas/Problem/properties/code/enum"),
        "DocumentClass lists every DocumentClass raw value": (
            REPO / "Sources/CoffreDomain/Documents/DocumentClass.swift", "/components/schemas/DocumentClass/enum"),
    }
    for name, (source, pointer) in sources.items():
        if not source.exists():
            checker.skip("spec: " + name, "%s not found" % source)
            continue
        swift = set(re.findall(r'^\s*case\s+\w+\s*=\s*"([^"]+)"', source.read_text(encoding="utf-8"), re.M))
        documented = set(spec.at(pointer))
        problems = []
        if swift - documented:
            problems.append("missing from the spec: %s" % ", ".join(sorted(swift - documented)))
        if documented - swift:
            problems.append("not in %s: %s" % (source.name, ", ".join(sorted(documented - swift))))
        checker.record("spec: " + name, problems)


def documented_codes_are_problem_codes(checker: Checker):
    """Every documented problem code is a Problem code."""
    spec = checker.spec
    problems = []
    all_codes = set(spec.at("/components/schemas/Problem/properties/code/enum"))

    def codes(node, pointer):
        if isinstance(node, dict):
            if "code" in node and isinstance(node["code"], dict) and "enum" in node["code"]:
                unknown = set(node["code"]["enum"]) - all_codes
                if unknown:
                    problems.append("%s: unknown codes %s" % (pointer, ", ".join(sorted(unknown))))
            for key, value in node.items():
                codes(value, pointer + "/" + escape(str(key)))
    codes(spec.doc.get("paths", {}), "/paths")
    codes(spec.doc.get("components", {}).get("responses", {}), "/components/responses")
    checker.record("spec: every operation's error codes are Problem codes", problems)


def documented_refusals_of_each_kind(checker: Checker):
    """Refusals every operation of a kind can answer: a person-level operation decides access and
    traces the decision first (fail closed), an operator operation asks the kernel who calls."""
    spec = checker.spec
    problems = []
    must = {"/v1/patients/": [("401", "assertion_missing"), ("403", "access_denied"), ("503", "trace_unavailable")],
            "/v1/admin/": [("403", "not_operator")], "/v1/retention/": [("403", "not_operator")]}
    for (method, template), (operation, pointer) in sorted(spec.operations.items()):
        needed = next((v for prefix, v in must.items() if template.startswith(prefix)), [])
        responses = {str(k): v for k, v in operation.get("responses", {}).items()}
        for status, code in needed:
            if status not in responses:
                problems.append("%s %s documents no %s" % (method, template, status))
                continue
            response, _ = spec.deref(responses[status], pointer + "/responses/" + status)
            try:
                enum = response["content"]["application/problem+json"]["schema"]["properties"]["code"]["enum"]
            except (KeyError, TypeError):
                enum = []
            if code not in enum:
                problems.append("%s %s: %s does not list %s" % (method, template, status, code))
    checker.record("spec: person-level operations document 401, 403 and 503 trace_unavailable; operator ones 403 "
                   "not_operator", problems)


def request_schemas_agree(checker: Checker):
    """Every JSON body sent: the daemon accepted it (2xx) iff the operation's request schema does,
    and a body refused as malformed_json is refused by the schema too."""
    problems = []
    for op, data, status, code in checker.sent_json:
        operation, pointer = checker.spec.operations[op]
        if "requestBody" not in operation:
            problems.append("%s %s has no requestBody" % op)
            continue
        try:
            body = json.loads(data)
        except ValueError:
            body = None
        errors = ["not JSON"] if body is None else checker.spec.errors(
            pointer + "/requestBody/content/application~1json/schema", body)
        if 200 <= status < 300 and errors:
            problems.append("%s %s: the daemon accepted %s, the schema refuses it (%s)"
                            % (op[0], op[1], data[:80], "; ".join(errors)))
        if code == "malformed_json" and not errors:
            problems.append("%s %s: the daemon refused %s as malformed_json, the schema accepts it" % (op[0], op[1], data[:80]))
    checker.record("request schemas agree with the daemon (%d JSON bodies)" % len(checker.sent_json), problems)


def final_checks(checker: Checker):
    """After every run: the request schemas against the daemon's verdicts, and coverage."""
    request_schemas_agree(checker)
    missing = sorted("%s %s" % op for op in set(checker.spec.operations) - checker.covered)
    checker.record("coverage: every operation of the spec passed at least one case",
                   ["not exercised successfully: " + ", ".join(missing)] if missing else [])
