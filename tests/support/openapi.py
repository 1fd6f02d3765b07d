"""docs/openapi.yaml as a test oracle: the document's own validity, and a response against it.

Needs only the standard library, jsonschema and PyYAML, and must behave the same under Debian 12's
python3-jsonschema 4.10.3 (RefResolver) and jsonschema 4.26 (the referencing library). So no
resolver API of either is used: every check builds one self-contained Draft 2020-12 schema (the
document's components.schemas copied into $defs, `#/components/schemas/X` rewritten to
`#/$defs/X`), and both versions resolve such local refs the same way. Formats (`uri`, `date-time`)
are annotations only, as 2020-12 defines them; patterns carry the checks that matter.
"""

import json
import math
import os
import re

import jsonschema
import yaml

_HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DOCUMENT = os.path.normpath(os.path.join(_HERE, "..", "..", "docs", "openapi.yaml"))
OAS_SCHEMA_FILE = os.path.normpath(os.path.join(_HERE, "..", "contract", "oas-3.1-schema.json"))
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_SCHEMA_REF_PREFIX = "#/components/schemas/"
_MAX_REPORTED_ERRORS = 12


class _JsonCompatibleLoader(yaml.SafeLoader):
    """YAML read as the JSON it stands for: YAML 1.1 would turn an unquoted 2026-06-28T10:31:00Z
    into a datetime, which is no JSON value and would fail every string pattern confusingly."""


_JsonCompatibleLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


# --------------------------------------------------------------------------- public API

def load(path=None):
    """The parsed OpenAPI document (default: the repository's docs/openapi.yaml)."""
    with open(path or DEFAULT_DOCUMENT, encoding="utf-8") as f:
        return yaml.load(f, Loader=_JsonCompatibleLoader)


def validate_document(doc):
    """Raise AssertionError listing every way `doc` is not a valid OpenAPI 3.1 document.

    Checks, in order: the document is plain JSON data; it validates against the official OAS 3.1
    schema (tests/contract/oas-3.1-schema.json, Draft 2020-12); every `$ref` in it resolves inside
    it; and what that schema cannot say: each Schema Object is a valid 2020-12 schema, each
    `{name}` in a path template is declared as a path parameter, operationIds are unique.
    """
    problems = _json_compatibility_problems(doc, "$")
    if problems:
        _fail("the document is not plain JSON data", problems)
    with open(OAS_SCHEMA_FILE, encoding="utf-8") as f:
        oas_schema = json.load(f)
    problems = _describe_errors(jsonschema.Draft202012Validator(oas_schema).iter_errors(doc))
    problems += _dangling_ref_problems(doc)
    if not problems:
        # Only once the structure and refs are sound: the checks below walk them.
        problems += _schema_object_problems(doc)
        problems += _path_parameter_problems(doc)
        problems += _operation_id_problems(doc)
    if problems:
        _fail("the document is not a valid OpenAPI 3.1 document", problems)


def operations(doc):
    """Every documented operation as (METHOD, path template), in document order."""
    return [(method.upper(), template)
            for template, path_item in (doc.get("paths") or {}).items()
            for method in HTTP_METHODS if method in resolve(doc, path_item)]


def resolve(doc, obj):
    """obj with any chain of Reference Objects ({"$ref": "#/…"}) followed."""
    for _ in range(32):
        if not _is_reference_only(obj):
            return obj
        target = _pointer_target(doc, obj["$ref"])
        if target is _MISSING:
            raise AssertionError("$ref %r does not resolve in the document" % obj["$ref"])
        obj = target
    raise AssertionError("$ref chain too long (a cycle?) at %r" % obj)


def response_schema(doc, method, path, status):
    """The self-contained JSON Schema of the documented application/json body of this answer, or
    None when it documents no JSON body. AssertionError when the answer is not documented."""
    _, response = _documented_response(doc, method.upper(), path, int(status))
    media = (response.get("content") or {}).get("application/json")
    if media is None or "schema" not in media:
        return None
    return _standalone_schema(doc, media["schema"])


def check_response(doc, method, path, status, headers, body):
    """Assert that a response is one the document describes; returns the parsed JSON body or None.

    `path` is the URL path (a query or fragment is cut off); it is matched against the path
    templates, `{name}` standing for one non-empty segment. A method the path item does not
    document is still described by its operations' 405 response, since that is how the API
    answers it. The response is the one for `status` (exact, else the `4XX`-style range, else
    `default`, as OpenAPI orders them). Then: every `required: true` header is present
    (case-insensitive) and every documented header's values match its schema; a 304 or HEAD
    answer has no body; a body is allowed only where content is documented, with a documented
    Content-Type; a JSON body is strict JSON and matches its schema. `headers` is dict-like or a
    list of (name, value) pairs; `body` is bytes.
    """
    method, status = method.upper(), int(status)
    where = "%s %s -> %s" % (method, path, status)
    template, response = _documented_response(doc, method, path, status)
    received = _header_values(headers)
    problems = _header_problems(doc, response, received)
    content = response.get("content") or {}
    body = body or b""
    parsed = None
    if status == 304 or method == "HEAD":
        if body:
            problems.append("a %s answer must not have a body, got %d bytes: %r"
                            % ("304" if status == 304 else "HEAD", len(body), body[:200]))
    elif not content:
        if body:
            problems.append("the response documents no body, yet has %d bytes: %r" % (len(body), body[:200]))
    else:
        media_key, media_problem = _documented_media_type(content, received.get("content-type"))
        if media_problem:
            problems.append(media_problem)
        elif _is_json(media_key):
            schema = content[media_key].get("schema")
            if not body:
                problems.append("the documented %s body is missing" % media_key)
            else:
                parsed, parse_problem = _parse_strict_json(body)
                if parse_problem:
                    problems.append(parse_problem)
                elif schema is not None:
                    validator = jsonschema.Draft202012Validator(_standalone_schema(doc, schema))
                    problems += ["body " + p for p in _describe_errors(validator.iter_errors(parsed))]
    if problems:
        _fail("%s does not match %s %s in the document" % (where, method, template), problems)
    return parsed


# --------------------------------------------------------------------------- finding the answer

def _documented_response(doc, method, path, status):
    """(path template, resolved Response Object) documented for this answer, else AssertionError."""
    where = "%s %s -> %s" % (method, path, status)
    template, path_item = _match_path(doc, path)
    if template is None:
        raise AssertionError("%s: no path template in the document matches %r" % (where, path))
    operation = path_item.get(method.lower())
    if operation is None and method == "HEAD":
        # HEAD is answered wherever GET is, with GET's status and headers and no body.
        operation = path_item.get("get")
    if operation is not None:
        responses = resolve(doc, operation.get("responses") or {})
        response = _response_for_status(responses, status)
        if response is None:
            raise AssertionError("%s: status %s is not documented for %s %s (documented: %s)"
                                 % (where, status, method, template, ", ".join(responses)))
        return template, resolve(doc, response)
    documented = [m.upper() for m in HTTP_METHODS if m in path_item]
    if status == 405:
        for m in HTTP_METHODS:
            response = resolve(doc, (path_item.get(m) or {}).get("responses") or {}).get("405")
            if response is not None:
                return template, resolve(doc, response)
    raise AssertionError("%s: %s is not documented for %s (documented: %s), and only a documented "
                         "405 could answer it" % (where, method, template, ", ".join(documented)))


def _match_path(doc, path):
    """(template, resolved Path Item) of the best match: the most literal template wins, as
    OpenAPI has concrete paths match before templated ones."""
    path = re.split(r"[?#]", path, maxsplit=1)[0]
    matches = _matching_templates(doc, path)
    if not matches and len(path) > 1 and path.endswith("/"):
        # The API (http/route.cpp) names each resource with or without one trailing slash, which
        # OpenAPI cannot express: the document says it in words, in each path's description.
        matches = _matching_templates(doc, path[:-1])
    if not matches:
        return None, None
    _, template, path_item = min(matches, key=lambda m: m[0])
    return template, resolve(doc, path_item)


def _matching_templates(doc, path):
    matches = []
    for template, path_item in (doc.get("paths") or {}).items():
        pattern = "".join("[^/]+" if part.startswith("{") else re.escape(part)
                          for part in re.split(r"(\{[^{}]+\})", template))
        if re.fullmatch(pattern, path):
            matches.append((template.count("{"), template, path_item))
    return matches


def _response_for_status(responses, status):
    status = str(status)
    for key in (status, status[:1] + "XX", "default"):
        if key in responses:
            return responses[key]
    return None


# --------------------------------------------------------------------------- headers and body

def _header_values(headers):
    """Lower-cased header name -> its values in order, from a dict-like or (name, value) pairs."""
    if hasattr(headers, "items"):
        pairs = headers.items()
    elif hasattr(headers, "raw"):
        pairs = headers.raw  # tests/support/musicapi.Headers keeps the pairs there
    else:
        pairs = headers or []
    values = {}
    for name, value in pairs:
        values.setdefault(name.lower(), []).append(value)
    return values


def _header_problems(doc, response, received):
    problems = []
    for name, header in (response.get("headers") or {}).items():
        if name.lower() == "content-type":
            continue  # OpenAPI: a Content-Type header definition SHALL be ignored
        header = resolve(doc, header)
        values = received.get(name.lower())
        if not values:
            if header.get("required"):
                problems.append("required header %s is missing" % name)
            continue
        if "schema" not in header:
            continue
        validator = jsonschema.Draft202012Validator(_standalone_schema(doc, header["schema"]))
        for value in values:
            typed = _typed_header_value(doc, header["schema"], value)
            problems += ["header %s: %r: %s" % (name, value, p.split(": ", 1)[1])
                         for p in _describe_errors(validator.iter_errors(typed))]
    return problems


def _typed_header_value(doc, schema, value):
    """A header's text as the value its schema describes (style simple): an integer schema gets
    int("2"), so that Retry-After: 2 is checked as the integer it stands for."""
    schema = resolve(doc, schema)
    if isinstance(schema, dict) and schema.get("type") == "integer" and re.fullmatch(r"-?[0-9]+", value.strip()):
        return int(value.strip())
    return value


def _documented_media_type(content, content_types):
    """(content key, None) for the response's Content-Type, or (None, what is wrong)."""
    if not content_types:
        return None, "a body without a Content-Type header (documented: %s)" % ", ".join(content)
    media_type = content_types[0].split(";", 1)[0].strip().lower()
    keys = {key.split(";", 1)[0].strip().lower(): key for key in content}
    for candidate in (media_type, media_type.split("/", 1)[0] + "/*", "*/*"):
        if candidate in keys:
            return keys[candidate], None
    return None, "Content-Type %r is not documented (documented: %s)" % (content_types[0], ", ".join(content))


def _is_json(media_key):
    media_type = media_key.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


def _parse_strict_json(body):
    """(value, None), or (None, why the body is not strict JSON): NaN, Infinity and repeated keys
    are accepted by json.loads but by no other parser's contract, so they are refused here."""
    def no_repeated_keys(pairs):
        obj = {}
        for key, value in pairs:
            if key in obj:
                raise ValueError("key %r appears twice in one object" % key)
            obj[key] = value
        return obj

    def no_constants(name):
        raise ValueError("%s is not JSON" % name)

    try:
        return json.loads(body.decode("utf-8"), object_pairs_hook=no_repeated_keys,
                          parse_constant=no_constants), None
    except (UnicodeDecodeError, ValueError) as e:
        return None, "the body is not strict JSON (%s): %r" % (e, body[:200])


# --------------------------------------------------------------------------- schemas and refs

def _standalone_schema(doc, schema):
    """`schema` as one self-contained Draft 2020-12 schema, the document's components.schemas
    carried along as $defs."""
    schema = _rewrite_schema_refs(schema)
    if isinstance(schema, bool):
        return schema
    components = (doc.get("components") or {}).get("schemas") or {}
    standalone = {"$schema": DRAFT_2020_12}
    standalone.update(schema)
    standalone["$defs"] = {name: _rewrite_schema_refs(s) for name, s in components.items()}
    return standalone


def _is_reference_only(obj):
    return isinstance(obj, dict) and isinstance(obj.get("$ref"), str)


def _rewrite_schema_refs(node):
    if isinstance(node, dict):
        rewritten = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                if not value.startswith(_SCHEMA_REF_PREFIX):
                    raise AssertionError("schema $ref %r: only refs to #/components/schemas/ are supported" % value)
                value = "#/$defs/" + value[len(_SCHEMA_REF_PREFIX):]
            rewritten[key] = _rewrite_schema_refs(value)
        return rewritten
    if isinstance(node, list):
        return [_rewrite_schema_refs(v) for v in node]
    return node


_MISSING = object()


def _pointer_target(doc, ref):
    """The value a local ref ("#/a/b~1c") points at, or _MISSING."""
    if not ref.startswith("#"):
        return _MISSING
    node = doc
    pointer = ref[1:]
    if not pointer:
        return node
    if not pointer.startswith("/"):
        return _MISSING
    for token in pointer[1:].split("/"):
        token = _percent_decode(token).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return _MISSING
    return node


def _percent_decode(text):
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), text)


# --------------------------------------------------------------------------- document checks

def _json_compatibility_problems(node, where):
    if isinstance(node, dict):
        problems = []
        for key, value in node.items():
            if not isinstance(key, str):
                problems.append("%s: key %r is a %s, not a string (quote it in YAML)"
                                % (where, key, type(key).__name__))
            problems += _json_compatibility_problems(value, _child(where, str(key)))
        return problems
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _json_compatibility_problems(v, "%s[%d]" % (where, i))]
    if isinstance(node, float) and not math.isfinite(node):
        return ["%s: %r is not a JSON number" % (where, node)]
    if node is None or isinstance(node, (str, bool, int, float)):
        return []
    return ["%s: a %s is not a JSON value (quote it in YAML)" % (where, type(node).__name__)]


def _dangling_ref_problems(doc):
    problems = []

    def walk(node, where):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and _pointer_target(doc, ref) is _MISSING:
                problems.append("%s: $ref %r does not resolve in the document (only local refs are used)"
                                % (where, ref))
            for key, value in node.items():
                if key != "example":  # literal data, not document structure
                    walk(value, _child(where, key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, "%s[%d]" % (where, i))

    walk(doc, "$")
    return problems


def _schema_object_problems(doc):
    """Each Schema Object checked against the 2020-12 meta-schema, which the OAS schema leaves out
    (it accepts any object there)."""
    problems = []

    def check(schema, where):
        # The schema alone: its refs are only strings to the meta-schema, and the components they
        # name are checked themselves; _dangling_ref_problems has seen that they resolve.
        try:
            jsonschema.Draft202012Validator.check_schema(_rewrite_schema_refs(schema))
        except jsonschema.exceptions.SchemaError as e:
            problems.append("%s: not a valid JSON Schema: %s" % (where, e.message))
        except AssertionError as e:
            problems.append("%s: %s" % (where, e))

    def walk(node, where):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "example":
                    continue
                if key == "schema" and isinstance(value, (dict, bool)):
                    check(value, _child(where, key))  # Parameter, Header and Media Type schemas
                else:
                    walk(value, _child(where, key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, "%s[%d]" % (where, i))

    for name, schema in ((doc.get("components") or {}).get("schemas") or {}).items():
        check(schema, "$.components.schemas.%s" % name)
    walk({k: v for k, v in doc.items() if k != "components"}, "$")
    walk({k: v for k, v in (doc.get("components") or {}).items() if k != "schemas"}, "$.components")
    return problems


def _path_parameter_problems(doc):
    problems = []
    for template, path_item in (doc.get("paths") or {}).items():
        path_item = resolve(doc, path_item)
        names = re.findall(r"\{([^{}]+)\}", template)
        shared = _path_parameter_names(doc, path_item.get("parameters"))
        for method in HTTP_METHODS:
            if method not in path_item:
                continue
            declared = shared | _path_parameter_names(doc, path_item[method].get("parameters"))
            for name in names:
                if name not in declared:
                    problems.append("%s %s: path parameter {%s} is not declared (in: path)"
                                    % (method.upper(), template, name))
            for name in declared - set(names):
                problems.append("%s %s: path parameter %r is not in the template" % (method.upper(), template, name))
    return problems


def _path_parameter_names(doc, parameters):
    return {p.get("name") for p in (resolve(doc, p) for p in parameters or []) if p.get("in") == "path"}


def _operation_id_problems(doc):
    seen = {}
    problems = []
    for template, path_item in (doc.get("paths") or {}).items():
        path_item = resolve(doc, path_item)
        for method in HTTP_METHODS:
            operation_id = (path_item.get(method) or {}).get("operationId")
            if operation_id is None:
                continue
            if operation_id in seen:
                problems.append("operationId %r of %s %s is also %s's" % (operation_id, method.upper(), template,
                                                                         seen[operation_id]))
            seen[operation_id] = "%s %s" % (method.upper(), template)
    return problems


# --------------------------------------------------------------------------- reporting

def _describe_errors(errors):
    """Readable lines for jsonschema errors, deepest first. "Unevaluated properties" errors are
    dropped when there are others: 4.10.3 adds one for every object above a failure."""
    errors = list(errors)
    real = [e for e in errors if e.validator != "unevaluatedProperties"]
    errors = sorted(real or errors, key=lambda e: (-len(e.absolute_path), list(map(str, e.absolute_path))))
    lines = []
    for e in errors[:_MAX_REPORTED_ERRORS]:
        line = "at %s: %s" % (_json_path(e.absolute_path), e.message)
        if e.context:
            # Of a failed oneOf/anyOf, the branch meant is rarely the one refused for its type.
            meant = [c for c in e.context if c.validator != "type"] or list(e.context)
            best = jsonschema.exceptions.best_match(meant)
            line += " (closest: at %s: %s)" % (_json_path(list(e.absolute_path) + list(best.relative_path)),
                                               best.message)
        lines.append(line)
    if len(errors) > _MAX_REPORTED_ERRORS:
        lines.append("… and %d more" % (len(errors) - _MAX_REPORTED_ERRORS))
    return lines


def _json_path(parts):
    where = "$"
    for part in parts:
        where = "%s[%d]" % (where, part) if isinstance(part, int) else _child(where, part)
    return where


def _child(where, key):
    return "%s.%s" % (where, key) if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key) else "%s[%s]" % (
        where, json.dumps(key))


def _fail(summary, problems):
    raise AssertionError("%s:\n  - %s" % (summary, "\n  - ".join(problems)))

