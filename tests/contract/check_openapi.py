#!/usr/bin/env python3
"""docs/openapi.yaml against the OAS 3.1 schema, the code's error tables, the built routes, their
handlers, bodies and renderers, and proof that the checks in tests/support/openapi.py can fail.
Needs no server or database.

Run: python3 tests/contract/check_openapi.py
"""

import copy
import json
import os
import re
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
import jsonschema  # noqa: E402
import musicapi  # noqa: E402  (stdlib only; its stack environment is read only when asked for)
import openapi  # noqa: E402

ERROR_TABLE = os.path.join(REPO, "fcgi-app", "core", "error.cpp")
QUERY_PARAMS = os.path.join(REPO, "fcgi-app", "http", "query_params.cpp")
ROUTE_TABLE = os.path.join(REPO, "fcgi-app", "http", "route.cpp")
HANDLER_TABLE = os.path.join(REPO, "fcgi-app", "pipeline", "pipeline.cpp")
LIBRARY_ROUTES = os.path.join(REPO, "fcgi-app", "pipeline", "library_routes.cpp")
RENDER = os.path.join(REPO, "fcgi-app", "http", "render.cpp")
JSON_BODY = os.path.join(REPO, "fcgi-app", "http", "json_body.hpp")
NGINX_DIR = os.path.join(REPO, "nginx")

LIST = "/v1/music/{organization_id}/tracks"
TRACK = "/v1/music/{organization_id}/tracks/{track_id}"
SAVE = "/v1/music/{organization_id}/tracks/{track_id}/save"
SHARE = "/v1/music/{organization_id}/tracks/{track_id}/share"
COLLECTIONS = "/v1/music/{organization_id}/collections"
COLLECTION = "/v1/music/{organization_id}/collections/{collection_id}"
COLLECTION_TRACKS = "/v1/music/{organization_id}/collections/{collection_id}/tracks"
COLLECTION_TRACK = "/v1/music/{organization_id}/collections/{collection_id}/tracks/{track_id}"
COLLECTION_ORDER = "/v1/music/{organization_id}/collections/{collection_id}/order"
SHARE_LINK = "/v1/music/{organization_id}/shares/{share_id}"
SHARED = "/v1/music/shared/{token}"
SHARED_SAVE = "/v1/music/shared/{token}/save"
MEDIA = "/v1/media/{track_id}/{file}"

# route.cpp's placeholders, as the document names the path parameters.
PLACEHOLDERS = {"{org}": "{organization_id}", "{track}": "{track_id}", "{collection}": "{collection_id}",
                "{share}": "{share_id}", "{token}": "{token}"}


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def built_routes():
    """({path template: Allow}, {RouteId: path template}) of every public row of route.cpp's kRoutes."""
    table = re.search(r"kRoutes\[\] = \{(.*?)\n\};", read(ROUTE_TABLE), re.S).group(1)
    rows = re.findall(r'\{RouteId::(k\w+), "([^"]*)", "([^"]*)", \{((?:"[^"]*",?\s*)*)\}\}', table)
    # A row this pattern misses would silently escape every check below.
    assert len(rows) == table.count("{RouteId::"), "parsed %d rows of route.cpp's kRoutes, it has %d" % (
        len(rows), table.count("{RouteId::"))
    allow, ids = {}, {}
    for route_id, methods, internal, pattern in rows:
        segments = re.findall(r'"([^"]*)"', pattern)
        if internal:
            assert not segments, route_id
            continue  # host-only (/music-api/status, /music-api/ping): not part of the document
        template = "/v1/music/" + "/".join(PLACEHOLDERS.get(s, s) for s in segments)
        allow[template], ids[route_id] = methods, template
    return allow, ids


def body_operations():
    """{(METHOD, template): whether a body is required} of every handler that reads a JSON body
    (JsonBody::Parse in library_routes.cpp, its last argument saying whether none is allowed), by
    pipeline.cpp's handler table."""
    _, ids = built_routes()
    handlers = re.findall(r'\{RouteId::(k\w+), "([A-Z]+)", (\w+)(?:, "\w+")?\}',
                          re.search(r"kHandlers\[\] = \{(.*?)\n\};", read(HANDLER_TABLE), re.S).group(1))
    text = read(LIBRARY_ROUTES)
    starts = [(m.start(), m.group(1)) for m in re.finditer(r"^Result<void> (\w+)\(const Request& request", text, re.M)]
    reads = {}
    for i, (start, name) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        parse = re.findall(r"JsonBody::Parse\(request\.content_type, request\.body, (true|false)\)", text[start:end])
        assert len(parse) <= 1, name
        if parse:
            reads[name] = parse[0] == "false"
    assert reads, "no handler in library_routes.cpp reads a body?"
    found = {(method, ids[route]): reads[name] for route, method, name in handlers if name in reads}
    assert len(found) == len(reads), "a body-reading handler is in no row of kHandlers: %s" % sorted(reads)
    return found


def code_constants(path):
    """Every `kName = <integer>` (or `<a> * <b>`) constant of a C++ file."""
    values = {}
    for name, a, b in re.findall(r"\b(k\w+) = (\d+)(?: \* (\d+))?", read(path)):
        values[name] = int(a) * (int(b) if b else 1)
    return values


ROUTE_ALLOW, _ = built_routes()
ROUTE_ALLOW[MEDIA] = "GET, HEAD"  # nginx's music-api-media.conf, not the API's table
# The methods the document describes for each route: HEAD is implied by GET.
ROUTE_METHODS = {t: set(allow.split(", ")) - {"HEAD"} for t, allow in ROUTE_ALLOW.items()}

# Which of error.cpp's codes each API operation can give. A code in no set here is either
# refused by that operation's documented schema, or its status is not documented there.
KEY = {"AUTHENTICATION_REQUIRED", "INVALID_API_KEY", "API_KEY_EXPIRED"}
MEMBER = {"ORGANIZATION_ACCESS_DENIED", "INSUFFICIENT_PERMISSIONS"}
EVERY = {"METHOD_NOT_ALLOWED", "INTERNAL_ERROR", "SERVICE_UNAVAILABLE"}
IN_ORG = EVERY | KEY | MEMBER
NOT_FOUND, QUERY, BODY = {"RESOURCE_NOT_FOUND"}, {"VALIDATION_ERROR"}, {"VALIDATION_ERROR", "UNSUPPORTED_MEDIA_TYPE"}
# Every POST, PATCH and DELETE takes an Idempotency-Key (its refusals, its in-use answer) and may
# meet a concurrent write's unique violation (409 CONFLICT, never a 500).
WRITE = {"VALIDATION_ERROR", "IDEMPOTENCY_KEY_REUSED", "IDEMPOTENCY_KEY_IN_USE", "CONFLICT"}
# The two creates count against a per-user quota (max_collections_per_user, max_share_links_per_user).
QUOTA = {"QUOTA_EXCEEDED"}
API_CODES = {
    ("GET", LIST): IN_ORG | NOT_FOUND | QUERY,
    ("GET", TRACK): IN_ORG | NOT_FOUND,
    ("DELETE", TRACK): IN_ORG | NOT_FOUND | WRITE,
    ("POST", SAVE): IN_ORG | NOT_FOUND | WRITE,
    ("DELETE", SAVE): IN_ORG | NOT_FOUND | WRITE,
    ("POST", SHARE): IN_ORG | NOT_FOUND | BODY | WRITE | QUOTA | {"WRITE_OUTCOME_UNKNOWN"},
    ("GET", COLLECTIONS): IN_ORG | QUERY,
    ("POST", COLLECTIONS): IN_ORG | BODY | WRITE | QUOTA | {"WRITE_OUTCOME_UNKNOWN"},
    ("GET", COLLECTION): IN_ORG | NOT_FOUND,
    ("PATCH", COLLECTION): IN_ORG | NOT_FOUND | BODY | WRITE,
    ("DELETE", COLLECTION): IN_ORG | NOT_FOUND | WRITE,
    ("GET", COLLECTION_TRACKS): IN_ORG | NOT_FOUND | QUERY,
    ("POST", COLLECTION_TRACKS): IN_ORG | NOT_FOUND | BODY | WRITE,
    ("DELETE", COLLECTION_TRACK): IN_ORG | NOT_FOUND | WRITE,
    ("PATCH", COLLECTION_ORDER): IN_ORG | NOT_FOUND | BODY | WRITE,
    ("DELETE", SHARE_LINK): IN_ORG | NOT_FOUND | WRITE,
    # Opening a link reads no key; saving from one maps "not a member" to the dead link's 404.
    ("GET", SHARED): EVERY | NOT_FOUND,
    ("POST", SHARED_SAVE): EVERY | KEY | {"INSUFFICIENT_PERMISSIONS"} | NOT_FOUND | WRITE,
}
API_OPERATIONS = tuple(API_CODES)
MEDIA_OPERATIONS = (("GET", MEDIA),)
ALL_OPERATIONS = API_OPERATIONS + MEDIA_OPERATIONS
NO_KEY_OPERATIONS = {("GET", MEDIA), ("GET", SHARED)}
# Which documented operations can get each error nginx makes: those of its /v1/music/ location
# (the API's routes), of its /v1/media/ location, or of the whole server (music-api-errors.conf).
# nginx's own 404 reaches a documented path only as the media route's missing file, but the
# API's 404s are the same envelope, so every operation documenting a 404 must take nginx's body
# too. A new nginx code fails the test until it is placed here.
NGINX_CODE_OPERATIONS = {
    "RESOURCE_NOT_FOUND": MEDIA_OPERATIONS + tuple(op for op in API_OPERATIONS if NOT_FOUND <= API_CODES[op]),
    "BAD_REQUEST": ALL_OPERATIONS,
    "URI_TOO_LONG": ALL_OPERATIONS,
    "HEADERS_TOO_LARGE": ALL_OPERATIONS,
    "SERVICE_UNAVAILABLE": API_OPERATIONS,
    # A create without an Idempotency-Key that reached an app host which then failed (a 502).
    "WRITE_OUTCOME_UNKNOWN": (("POST", COLLECTIONS), ("POST", SHARE)),
    "GATEWAY_TIMEOUT": API_OPERATIONS,
    "PAYLOAD_TOO_LARGE": API_OPERATIONS,
    "RATE_LIMIT_EXCEEDED": API_OPERATIONS,
    "METHOD_NOT_ALLOWED": MEDIA_OPERATIONS,
    "PLAYBACK_URL_INVALID": MEDIA_OPERATIONS,
    "PLAYBACK_URL_EXPIRED": MEDIA_OPERATIONS,
    "RANGE_NOT_SATISFIABLE": MEDIA_OPERATIONS,
    # Only for the host-only /music-api/status and /music-api/ping, which the document leaves
    # out: the code must be named in it, but no documented route gets it.
    "FORBIDDEN": (),
    # Refused by nginx before any route is chosen (music-api-errors.conf): named in the document's
    # table, on no operation.
    "NOT_IMPLEMENTED": (),
    "HTTP_VERSION_NOT_SUPPORTED": (),
}

ORG = "org_contract1"
TRACK_ID = "mtrack_contract1"
COLL_ID = "mcoll_contract1"
LINK_ID = "mslink_contract1"
TOKEN = "shr_" + "aB3" * 14 + "x"
PATHS = {LIST: "/v1/music/%s/tracks" % ORG,
         TRACK: "/v1/music/%s/tracks/%s" % (ORG, TRACK_ID),
         SAVE: "/v1/music/%s/tracks/%s/save" % (ORG, TRACK_ID),
         SHARE: "/v1/music/%s/tracks/%s/share" % (ORG, TRACK_ID),
         COLLECTIONS: "/v1/music/%s/collections" % ORG,
         COLLECTION: "/v1/music/%s/collections/%s" % (ORG, COLL_ID),
         COLLECTION_TRACKS: "/v1/music/%s/collections/%s/tracks" % (ORG, COLL_ID),
         COLLECTION_TRACK: "/v1/music/%s/collections/%s/tracks/%s" % (ORG, COLL_ID, TRACK_ID),
         COLLECTION_ORDER: "/v1/music/%s/collections/%s/order" % (ORG, COLL_ID),
         SHARE_LINK: "/v1/music/%s/shares/%s" % (ORG, LINK_ID),
         SHARED: "/v1/music/shared/%s" % TOKEN,
         SHARED_SAVE: "/v1/music/shared/%s/save" % TOKEN,
         MEDIA: "/v1/media/%s/master.mp3" % TRACK_ID}
REQUEST_ID = "req_8ZkQ2mXv4TnR7pLc1sWb9yHd"
TIMESTAMP = "2026-06-28T10:30:00Z"
JSON_TYPE = musicapi.JSON_CONTENT_TYPE
SIGNED_URL = ("https://api.example.com/v1/media/%s/master.mp3?exp=1782643860&kid=k1&sig=%s"
              % (TRACK_ID, "A" * 43))
# SharedLink's keys, as test_shares.py and render.cpp have them.
SHARED_LINK_KEYS = ["kind", "available", "message", "share", "track", "collection", "tracks"]


def api_error_rows():
    """(status, code, type, message, system_message) of every row of fcgi-app/core/error.cpp."""
    with open(ERROR_TABLE, encoding="utf-8") as f:
        text = f.read()
    rows = re.findall(r'\{(\d{3}),\s*"([A-Z_]+)",\s*"([a-z_]+)",\s*"([^"]*)",\s*"([^"]*)"\}', text)
    declared = int(re.search(r"std::array<ErrorInfo,\s*(\d+)>", text).group(1))
    # A row this pattern misses would silently escape every check below.
    assert len(rows) == declared, "parsed %d rows of error.cpp, its table has %d" % (len(rows), declared)
    return [(int(s), code, etype, message, system) for s, code, etype, message, system in rows]


def list_query_fields():
    """(the list's query parameter names, every details.field its 422s can name) from
    fcgi-app/http/query_params.cpp."""
    with open(QUERY_PARAMS, encoding="utf-8") as f:
        text = f.read()
    names = re.findall(r'"([a-z_]+)"', re.search(r"kFieldNames = \{(.*?)\};", text, re.S).group(1))
    # Besides each parameter's own name, errors about the query string as a whole name a literal.
    literal_fields = re.findall(r'Validation\("([a-z_]+)"', text)
    return names, set(names) | set(literal_fields)


def nginx_error_bodies():
    """(file, status, parsed body) of every JSON error nginx/*.conf returns, variables filled in."""
    found = []
    for name in sorted(os.listdir(NGINX_DIR)):
        if not name.endswith(".conf"):
            continue
        with open(os.path.join(NGINX_DIR, name), encoding="utf-8") as f:
            text = f.read()
        codes = re.findall(r'"code":"([A-Z_]+)"', text)
        bodies = re.findall(r"return (\d{3}) '(\{.*\})';", text)
        assert len(bodies) == len(codes), "%s: %d codes but %d JSON return bodies" % (name, len(codes), len(bodies))
        for status, body in bodies:
            body = body.replace("$request_id", "8f14e45fceea167a5a36dedd4bea2543").replace(
                "$music_api_timestamp", TIMESTAMP)
            found.append((name, int(status), json.loads(body)))
    return found


def envelope(status, code, etype, message, system_message):
    return {"success": False, "error": {
        "code": code, "message": message, "system_message": system_message, "type": etype,
        "status": status, "details": {"field": "limit"} if status == 422 else {},
        "trace_id": REQUEST_ID, "timestamp": TIMESTAMP}}


def schema_errors(doc, method, template, status, body):
    """The messages of `body` against the documented JSON schema of this answer."""
    schema = openapi.response_schema(doc, method, PATHS[template], status)
    if schema is None:
        return ["%s %s -> %d documents no JSON body" % (method, template, status)]
    return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(body)]


def accepted(doc, method, template, status, body):
    """Whether the document describes this error answer at all (status documented, body accepted)."""
    try:
        return not schema_errors(doc, method, template, status, body)
    except AssertionError:  # the status is not documented for the operation
        return False


def request_schema_errors(doc, schema, body):
    validator = jsonschema.Draft202012Validator(openapi._standalone_schema(doc, schema))
    return [e.message for e in validator.iter_errors(body)]


def rendered_keys(function):
    """The JSON keys a renderer of fcgi-app/http/render.cpp writes, in the order it writes them,
    with the keys of the render.cpp helpers it calls (AppendTrackFields…) in place of each call."""
    match = re.search(r"\nvoid %s\(.*?\n\}\n" % re.escape(function), read(RENDER), re.S)
    assert match, "no function %s in render.cpp" % function
    keys = []
    for key, helper in re.findall(r'\\"([a-z_]+)\\":|\n\s*(Append[A-Za-z]+Fields)\(', match.group(0)):
        keys += rendered_keys(helper) if helper else [key]
    return keys


def track(**changes):
    body = {"id": TRACK_ID, "title": "Late Night Study", "engine": "studio", "mode": "creation",
            "measured_duration_seconds": 119.4, "instrumental": True, "licence_class": "personal_only",
            "created_at": "2026-06-28T10:31:00Z", "playback_url": SIGNED_URL,
            "stem_urls": {"vocals": SIGNED_URL}}
    body.update(changes)
    return body


def collection(**changes):
    body = {"id": COLL_ID, "name": "Morning", "description": "Line one\nand\ttabs", "cover_track_id": TRACK_ID,
            "cover_image_url": "https://img.example.test/a.png?x=1", "track_count": 3,
            "created_at": "2026-12-01T08:00:00Z", "updated_at": "2026-12-02T09:15:30Z"}
    body.update(changes)
    return body


def share_created(**changes):
    body = {"id": LINK_ID, "token": TOKEN, "url": "https://localhost:8443/v1/music/shared/" + TOKEN,
            "target_type": "track", "visibility": "link_only", "expires_at": None,
            "created_at": "2026-12-02T03:04:05Z"}
    body.update(changes)
    return body


def shared_link(**changes):
    body = {"kind": "track", "available": True, "message": None,
            "share": {"target_type": "track", "visibility": "public", "expires_at": "2026-12-09T03:04:05Z"},
            "track": {"id": TRACK_ID, "title": None, "engine": "studio", "mode": "focus",
                      "measured_duration_seconds": None, "instrumental": False, "playback_url": SIGNED_URL,
                      "licence": {"licence_class": "personal_only", "licence_version": "2026-01",
                                  "commercial_use": False, "requires_attribution": True}},
            "collection": None, "tracks": None}
    body.update(changes)
    return body


UNAVAILABLE = {"kind": "track", "available": False,
               "message": "The creator removed this track; it is no longer available.",
               "share": None, "track": None, "collection": None, "tracks": None}


def ack(id_, detail):
    return json_bytes({"success": True, "id": id_, "detail": detail})


def json_bytes(value):
    return json.dumps(value).encode("utf-8")


def error_headers(**extra):
    headers = {"Content-Type": JSON_TYPE, "Cache-Control": "private, no-store", "X-Request-ID": REQUEST_ID}
    headers.update(extra)
    return headers


LIST_HEADERS = [
    ("Content-Type", JSON_TYPE),
    ("Cache-Control", "private, no-cache"),
    ("ETag", 'W/"5f2b9c0e41d7a3b8"'),
    ("Vary", "Authorization, X-API-Key"),
    ("Link", '</v1/music/%s/tracks?limit=1&offset=0>; rel="first", '
             '</v1/music/%s/tracks?limit=1&offset=1>; rel="next"' % (ORG, ORG)),
    ("X-Request-ID", REQUEST_ID),
]
TRACK_HEADERS = {"Content-Type": JSON_TYPE, "Cache-Control": "private, no-store", "X-Request-ID": REQUEST_ID}


class DocumentTests(unittest.TestCase):
    """The document is valid OpenAPI 3.1 and says what the code does."""

    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.doc = openapi.load()
        with open(openapi.DEFAULT_DOCUMENT, encoding="utf-8") as f:
            cls.text = f.read()

    def schema(self, name):
        return self.doc["components"]["schemas"][name]

    def operation(self, method, template):
        return self.doc["paths"][template][method.lower()]

    def test_document_is_valid_openapi_3_1(self):
        self.assertEqual(self.doc["openapi"], "3.1.0")
        openapi.validate_document(self.doc)

    def test_documents_exactly_the_built_routes_and_methods(self):
        documented = {}
        for method, template in openapi.operations(self.doc):
            documented.setdefault(template, set()).add(method)
        for methods in documented.values():
            if "GET" in methods:
                methods.discard("HEAD")  # implied by GET; an explicit head operation is allowed
        self.assertEqual(documented, ROUTE_METHODS)
        # The tables of this file name every operation, and only those.
        self.assertEqual(set(PATHS), set(ROUTE_METHODS))
        self.assertEqual(set(ALL_OPERATIONS), {(m, t) for t, methods in ROUTE_METHODS.items() for m in methods})

    def test_405_allow_lists_each_routes_methods(self):
        for template, allow in ROUTE_ALLOW.items():
            with self.subTest(route=template):
                body = json_bytes(envelope(405, "METHOD_NOT_ALLOWED", "invalid_request_error",
                                           "This method is not allowed for this resource.", "Allowed methods: " + allow))
                openapi.check_response(self.doc, "PUT", PATHS[template], 405, error_headers(Allow=allow), body)
                with self.assertRaisesRegex(AssertionError, "header Allow"):
                    openapi.check_response(self.doc, "PUT", PATHS[template], 405,
                                           error_headers(Allow=allow + ", PUT"), body)

    def test_only_the_media_route_and_opening_a_shared_link_need_no_key(self):
        self.assertEqual(self.doc["security"], [{"ApiKeyHeader": []}, {"BearerAuth": []}])
        schemes = self.doc["components"]["securitySchemes"]
        self.assertEqual((schemes["ApiKeyHeader"]["type"], schemes["ApiKeyHeader"]["in"],
                          schemes["ApiKeyHeader"]["name"]), ("apiKey", "header", "X-API-Key"))
        self.assertEqual((schemes["BearerAuth"]["type"], schemes["BearerAuth"]["scheme"]), ("http", "bearer"))
        for method, template in openapi.operations(self.doc):
            operation = self.operation(method, template)
            with self.subTest(method=method, route=template):
                if (method, template) in NO_KEY_OPERATIONS:
                    self.assertEqual(operation.get("security"), [])
                    self.assertNotIn("401", operation["responses"])
                else:
                    self.assertNotIn("security", operation)
                    self.assertIn("401", operation["responses"])

    def test_every_api_error_code_is_documented_on_every_route_that_can_give_it(self):
        rows = api_error_rows()
        self.assertEqual({code for _, code, _, _, _ in rows}, set().union(*API_CODES.values()),
                         "say in API_CODES which operations give each code of error.cpp")
        for status, code, etype, message, system_message in rows:
            self.assertIn(code, self.text)
            body = envelope(status, code, etype, message, system_message)
            for method, template in API_OPERATIONS:
                with self.subTest(code=code, method=method, route=template):
                    if code in API_CODES[(method, template)]:
                        self.assertEqual(schema_errors(self.doc, method, template, status, body), [])
                    else:
                        self.assertFalse(accepted(self.doc, method, template, status, body),
                                         "documented, yet this operation never gives it")

    def test_415_and_request_bodies_exactly_where_the_code_reads_a_body(self):
        bodies = body_operations()
        self.assertEqual({op for op, codes in API_CODES.items() if "UNSUPPORTED_MEDIA_TYPE" in codes}, set(bodies))
        for method, template in openapi.operations(self.doc):
            operation = self.operation(method, template)
            with self.subTest(method=method, route=template):
                if (method, template) not in bodies:
                    self.assertNotIn("requestBody", operation)
                    continue
                request_body = openapi.resolve(self.doc, operation["requestBody"])
                self.assertEqual(request_body.get("required", False), bodies[(method, template)])
                self.assertEqual(list(request_body["content"]), ["application/json"])
                self.assertIn("schema", request_body["content"]["application/json"])

    def test_every_nginx_error_code_is_documented_on_every_route_that_can_give_it(self):
        bodies = nginx_error_bodies()
        self.assertTrue(bodies)
        for conf, status, body in bodies:
            code = body["error"]["code"]
            self.assertIn(code, self.text, conf)
            self.assertIn(code, NGINX_CODE_OPERATIONS,
                          "%s: say in NGINX_CODE_OPERATIONS which operations get %s" % (conf, code))
            for method, template in NGINX_CODE_OPERATIONS[code]:
                with self.subTest(conf=conf, code=code, method=method, route=template):
                    self.assertEqual(schema_errors(self.doc, method, template, status, body), [])

    def query_422_fields(self, method, template):
        failed = openapi.resolve(self.doc, self.operation(method, template)["responses"]["422"])
        return set(failed["content"]["application/json"]["schema"]["allOf"][1]["properties"]["error"]["properties"][
            "details"]["properties"]["field"]["enum"])

    def test_list_parameters_and_422_fields_are_the_codes(self):
        names, fields = list_query_fields()
        self.assertEqual(len(names), 5, names)
        parameters = [openapi.resolve(self.doc, p) for p in self.operation("GET", LIST)["parameters"]]
        query = [p["name"] for p in parameters if p["in"] == "query"]
        self.assertEqual(query, names)
        self.assertEqual(self.query_422_fields("GET", LIST), fields)
        # The other lists read their query by the same rules (only limit and offset mean anything).
        for template in (COLLECTIONS, COLLECTION_TRACKS):
            with self.subTest(route=template):
                parameters = [openapi.resolve(self.doc, p) for p in self.operation("GET", template)["parameters"]]
                self.assertEqual([p["name"] for p in parameters if p["in"] == "query"], ["limit", "offset"])
                self.assertEqual(self.query_422_fields("GET", template), fields)

    def test_page_and_body_bounds_are_the_codes(self):
        k = code_constants(LIBRARY_ROUTES)
        for template, default, maximum, page in (
                (COLLECTIONS, k["kCollectionsDefaultLimit"], k["kCollectionsMaxLimit"], "CollectionPage"),
                (COLLECTION_TRACKS, k["kEntriesDefaultLimit"], k["kEntriesMaxLimit"], "CollectionEntries")):
            with self.subTest(route=template):
                limit = [openapi.resolve(self.doc, p) for p in self.operation("GET", template)["parameters"]][0]
                self.assertEqual((limit["name"], limit["schema"]["default"], limit["schema"]["minimum"],
                                  limit["schema"]["maximum"]), ("limit", default, 1, maximum))
                props = self.schema(page)["properties"]
                self.assertEqual((props["limit"]["maximum"], props["items"]["maxItems"]), (maximum, maximum))
        for name in ("Collection", "CollectionCreate", "CollectionUpdate"):
            with self.subTest(schema=name):
                props = self.schema(name)["properties"]
                self.assertEqual((props["name"]["minLength"], props["name"]["maxLength"]), (1, k["kMaxNameCharacters"]))
                self.assertEqual(props["description"]["maxLength"], k["kMaxDescriptionCharacters"])
                self.assertEqual(props["cover_image_url"]["maxLength"], k["kMaxImageUrlCharacters"])
        days = k["kMaxShareDays"]
        self.assertIn("above %d counts as %d" % (days, days),
                      self.schema("ShareCreate")["properties"]["expires_in_days"]["description"])
        body = code_constants(JSON_BODY)
        self.assertEqual(body["kMaxBodyBytes"] % 1024, 0)
        kib = "%d KiB" % (body["kMaxBodyBytes"] // 1024)
        words = lambda text: " ".join(text.split())  # noqa: E731  (the document wraps its lines)
        responses = self.doc["components"]["responses"]
        for text in (self.doc["info"]["description"], responses["PayloadTooLarge"]["description"],
                     responses["BodyValidationFailed"]["description"]):
            self.assertIn(kib, words(text))
        self.assertIn("nested at most %d deep" % body["kMaxBodyDepth"], words(self.doc["info"]["description"]))

    def test_keys_are_in_the_order_the_code_writes_them(self):
        track_schema = self.schema("Track")
        self.assertEqual(track_schema["required"], musicapi.ITEM_KEYS)
        self.assertEqual(list(track_schema["properties"]), musicapi.ITEM_KEYS)
        entry = self.schema("LibraryEntry")
        self.assertEqual(list(entry["properties"]), ["id", "track_id", "source", "created_at", "saved"])
        for name, function in (("Collection", "RenderCollection"), ("ShareCreated", "RenderShareCreated"),
                               ("SharedSave", "RenderSharedSave"), ("Acknowledgement", "RenderAcknowledgement")):
            with self.subTest(schema=name):
                self.assertEqual(list(self.schema(name)["properties"]), rendered_keys(function))
                self.assertEqual(self.schema(name)["required"], rendered_keys(function))
        window = rendered_keys("AppendWindow")
        self.assertEqual(list(self.schema("CollectionPage")["properties"]),
                         rendered_keys("RenderCollectionPage") + window)
        entries = list(self.schema("CollectionEntries")["properties"])
        item = list(self.schema("CollectionEntries")["properties"]["items"]["items"]["properties"])
        self.assertEqual(entries, ["collection_id", "items"] + window)
        self.assertEqual(entries[:2] + item, rendered_keys("RenderCollectionEntries"))
        # RenderSharedLink writes the unavailable answer first, then the available one, nested.
        top = list(self.schema("SharedLink")["properties"])
        self.assertEqual(top, SHARED_LINK_KEYS)
        share = list(self.schema("SharedLinkShare")["properties"])
        shared_track = []
        for key in self.schema("SharedTrack")["properties"]:
            shared_track.append(key)
            if key == "licence":
                shared_track += list(self.schema("SharedTrackLicence")["properties"])
        self.assertEqual(rendered_keys("RenderSharedLink"),
                         top + top[1:4] + share + ["track"] + shared_track + top[5:])
        for name in ("SharedLink", "SharedLinkShare", "SharedTrack", "SharedTrackLicence", "CollectionEntries",
                     "CollectionPage"):
            self.assertEqual(self.schema(name)["required"], list(self.schema(name)["properties"]), name)

    def test_examples_match_their_schemas(self):
        checked = 0
        for method, template in openapi.operations(self.doc):
            responses = self.operation(method, template)["responses"]
            for status in responses:
                media = openapi.resolve(self.doc, responses[status]).get("content", {}).get("application/json", {})
                examples = [media["example"]] if "example" in media else []
                examples += [e["value"] for e in media.get("examples", {}).values()]
                for example in examples:
                    with self.subTest(method=method, route=template, status=status):
                        self.assertEqual(schema_errors(self.doc, method, template, int(status), example), [])
                        checked += 1
        self.assertGreaterEqual(checked, 20)

    def test_request_examples_match_their_schemas(self):
        checked = 0
        for method, template in openapi.operations(self.doc):
            operation = self.operation(method, template)
            if "requestBody" not in operation:
                continue
            media = openapi.resolve(self.doc, operation["requestBody"])["content"]["application/json"]
            examples = [media["example"]] if "example" in media else []
            examples += [e["value"] for e in media.get("examples", {}).values()]
            self.assertTrue(examples, "%s %s: no request example" % (method, template))
            for example in examples:
                with self.subTest(method=method, route=template, example=example):
                    self.assertEqual(request_schema_errors(self.doc, media["schema"], example), [])
                    checked += 1
        self.assertGreaterEqual(checked, 5)

    def test_request_schemas_accept_and_refuse_what_the_code_does(self):
        """A sample of the body rules of library_routes.cpp (the e2e tests have them all)."""
        ref = lambda name: {"$ref": "#/components/schemas/" + name}  # noqa: E731
        cases = {
            "CollectionCreate": (
                [{"name": "x"}, {"name": "é" * 512},
                 {"name": "\U0001F600" * 512, "colour": "red", "extra": {"a": [1]}},
                 {"name": "\u00a0spaced\u00a0", "description": "a\nb\tc", "cover_track_id": None,
                  "cover_image_url": "http://img.example.test:8080/p/a.jpg?s=1#f"},
                 {"name": "x", "description": "é" * 2000, "cover_track_id": TRACK_ID,
                  "cover_image_url": "https://img.example.test/" + "a" * (1024 - 25)}],
                [{}, {"description": "no name"}, {"name": ""}, {"name": "a" * 513}, {"name": None}, {"name": 5},
                 {"name": "a\nb"}, {"name": "a\x7fb"}, {"name": "a\x85b"}, {"name": "x", "description": "a\rb"},
                 {"name": "x", "description": "é" * 2001}, {"name": "x", "description": ["x"]},
                 {"name": "x", "cover_track_id": "not-a-track"}, {"name": "x", "cover_track_id": 7},
                 {"name": "x", "cover_image_url": "ftp://img.example.test/a.png"},
                 {"name": "x", "cover_image_url": "/a.png"}, {"name": "x", "cover_image_url": "https:///a.png"},
                 {"name": "x", "cover_image_url": "https://img.example.test/a b.png"},
                 {"name": "x", "cover_image_url": "https://img.example.test/" + "a" * 1000}, [], "x"]),
            "CollectionUpdate": (
                [{}, {"name": "After", "unknown": 1},
                 {"description": None, "cover_track_id": None, "cover_image_url": None}],
                [{"name": None}, {"name": ""}, {"cover_track_id": ""}, {"cover_image_url": False}]),
            "AddTrack": ([{"track_id": TRACK_ID}], [{}, {"track_id": None}, {"track_id": 5}, {"trackid": TRACK_ID}]),
            "Reorder": ([{"ordered_track_ids": []}, {"ordered_track_ids": [TRACK_ID, TRACK_ID, "x"]}],
                        [{}, {"ordered_track_ids": None}, {"ordered_track_ids": TRACK_ID},
                         {"ordered_track_ids": [TRACK_ID, 5]},
                         {"ordered_track_ids": {"0": TRACK_ID}}, [1]]),
            "ShareCreate": (
                [{}, {"visibility": None, "expires_in_days": None}, {"visibility": "public", "expires_in_days": 7},
                 {"expires_in_days": 100000}, {"expires_in_days": 7.0}],
                [{"visibility": v} for v in ("private", "", "PUBLIC", 5, ["public"], True)]
                + [{"expires_in_days": v} for v in (0, -1, 1.5, "7", True, [7], {"d": 7})] + [[], "public"]),
        }
        for name, (good, bad) in cases.items():
            for body in good:
                with self.subTest(schema=name, accepted=body):
                    self.assertEqual(request_schema_errors(self.doc, ref(name), body), [])
            for body in bad:
                with self.subTest(schema=name, refused=body):
                    self.assertNotEqual(request_schema_errors(self.doc, ref(name), body), [])


class ValidateDocumentSelfTests(unittest.TestCase):
    """validate_document fails on broken copies of the document."""

    @classmethod
    def setUpClass(cls):
        cls.doc = openapi.load()

    def broken(self, change):
        doc = copy.deepcopy(self.doc)
        change(doc)
        return doc

    def assert_invalid(self, doc, pattern):
        with self.assertRaisesRegex(AssertionError, pattern):
            openapi.validate_document(doc)

    def test_openapi_3_0_is_refused(self):
        self.assert_invalid(self.broken(lambda d: d.update(openapi="3.0.0")), r"\$\.openapi")

    def test_response_without_description_is_refused(self):
        def drop(doc):
            del doc["paths"][TRACK]["get"]["responses"]["200"]["description"]
        self.assert_invalid(self.broken(drop), "'description' is a required property")

    def test_dangling_ref_is_refused(self):
        def dangle(doc):
            doc["paths"][LIST]["get"]["responses"]["401"] = {"$ref": "#/components/responses/NoSuchThing"}
        self.assert_invalid(self.broken(dangle), "NoSuchThing.*does not resolve")

    def test_undeclared_path_parameter_is_refused(self):
        def undeclare(doc):
            doc["paths"][SAVE]["parameters"] = [doc["paths"][SAVE]["parameters"][0]]
        self.assert_invalid(self.broken(undeclare), r"\{track_id\} is not declared")

    def test_invalid_schema_object_is_refused(self):
        def break_schema(doc):
            doc["components"]["schemas"]["Track"]["required"] = "id"
        self.assert_invalid(self.broken(break_schema), r"components\.schemas\.Track: not a valid JSON Schema")

    def test_yaml_timestamps_stay_strings(self):
        example = self.doc["paths"][LIST]["get"]["responses"]["200"]["content"]["application/json"]["example"]
        self.assertEqual(example["items"][0]["created_at"], "2026-06-28T10:31:00Z")


class CheckResponseSelfTests(unittest.TestCase):
    """check_response accepts what the API should send and refuses what it must not."""

    @classmethod
    def setUpClass(cls):
        cls.doc = openapi.load()

    def check(self, method, path, status, headers, body):
        return openapi.check_response(self.doc, method, path, status, headers, body)

    def refused(self, pattern, method, path, status, headers, body):
        with self.assertRaisesRegex(AssertionError, pattern):
            self.check(method, path, status, headers, body)

    def page(self, **item_changes):
        item = track(playback_url=None, stem_urls=None)
        item.update(item_changes)
        return json_bytes({"items": [item], "limit": 1, "offset": 0})

    # -- what must pass (so that the refusals below mean something)

    def test_good_answers_pass(self):
        self.assertEqual(self.check("GET", PATHS[LIST] + "?limit=1", 200, LIST_HEADERS, self.page())["limit"], 1)
        self.check("HEAD", PATHS[LIST], 200, LIST_HEADERS, b"")
        self.check("GET", PATHS[LIST] + "/", 200, LIST_HEADERS, self.page())  # the same resource
        self.check("GET", PATHS[LIST], 304, [h for h in LIST_HEADERS if h[0] != "Content-Type"], b"")
        self.check("GET", PATHS[TRACK], 200, TRACK_HEADERS, json_bytes(track()))
        self.check("GET", PATHS[TRACK], 200, TRACK_HEADERS, json_bytes(track(playback_url=None, stem_urls=None)))
        self.check("DELETE", PATHS[TRACK], 200, TRACK_HEADERS,
                   json_bytes({"success": True, "id": TRACK_ID, "detail": "Track deleted."}))
        self.check("POST", PATHS[SAVE], 200, TRACK_HEADERS,
                   json_bytes({"id": "mlib_1", "track_id": TRACK_ID, "source": "own",
                               "created_at": "2026-12-02T03:04:05Z", "saved": True}))
        self.check("DELETE", PATHS[SAVE], 200, TRACK_HEADERS,
                   json_bytes({"success": True, "id": TRACK_ID, "detail": "Track removed from library."}))
        self.check("GET", PATHS[MEDIA] + "?exp=1&kid=k1&sig=x", 206,
                   [("Content-Type", "audio/mpeg"), ("Cache-Control", "private, max-age=287"),
                    ("Content-Range", "bytes 0-3/100")], b"\xff\xfb\x90\x00")
        self.check("HEAD", PATHS[MEDIA], 200, [("Content-Type", "audio/flac"), ("Accept-Ranges", "bytes"),
                                               ("Cache-Control", "private, max-age=0"), ("Content-Length", "100")], b"")
        self.check("GET", PATHS[LIST], 503, error_headers(**{"Retry-After": "2"}),
                   json_bytes(envelope(503, "SERVICE_UNAVAILABLE", "server_error", "Try again later.", "x")))

    def test_headers_as_musicapi_headers_pass(self):
        self.check("GET", PATHS[LIST], 200, musicapi.Headers(LIST_HEADERS), self.page())

    # -- bodies

    def test_track_without_stem_urls_is_refused(self):
        body = track()
        del body["stem_urls"]
        self.refused("'stem_urls' is a required property", "GET", PATHS[TRACK], 200, TRACK_HEADERS, json_bytes(body))

    def test_track_with_an_extra_key_is_refused(self):
        self.refused("'owner' was unexpected", "GET", PATHS[TRACK], 200, TRACK_HEADERS, json_bytes(track(owner="u")))

    def test_list_item_with_playback_url_is_refused(self):
        self.refused(r"items\[0\]\.playback_url", "GET", PATHS[LIST], 200, LIST_HEADERS,
                     self.page(playback_url=SIGNED_URL))

    def test_unsigned_playback_url_is_refused(self):
        self.refused("playback_url", "GET", PATHS[TRACK], 200, TRACK_HEADERS,
                     json_bytes(track(playback_url="https://cdn.example.com/a.mp3")))

    def test_wrong_error_code_for_the_status_is_refused(self):
        self.refused("'RESOURCE_NOT_FOUND' was expected|is not one of", "GET", PATHS[LIST], 401, error_headers(),
                     json_bytes(envelope(401, "RESOURCE_NOT_FOUND", "authentication_error", "m m", "s")))

    def test_validation_error_without_field_is_refused(self):
        body = envelope(422, "VALIDATION_ERROR", "validation_error", "m m", "s")
        body["error"]["details"] = {}
        self.refused("'field' is a required property", "GET", PATHS[LIST], 422, error_headers(), json_bytes(body))

    def test_body_that_is_not_strict_json_is_refused(self):
        self.refused("not strict JSON", "GET", PATHS[TRACK], 200, TRACK_HEADERS,
                     b'{"id":"mtrack_a","id":"mtrack_b"}')
        self.refused("not strict JSON", "GET", PATHS[TRACK], 200, TRACK_HEADERS,
                     json_bytes(track()).replace(b"119.4", b"NaN"))

    def test_missing_json_body_is_refused(self):
        self.refused("body is missing", "GET", PATHS[TRACK], 200, TRACK_HEADERS, b"")

    def test_undocumented_content_type_is_refused(self):
        self.refused("Content-Type 'text/html' is not documented", "GET", PATHS[TRACK], 200,
                     dict(TRACK_HEADERS, **{"Content-Type": "text/html"}), b"<html></html>")

    # -- statuses, methods, paths

    def test_undocumented_status_is_refused(self):
        self.refused(r"GET %s -> 418: status 418 is not documented" % re.escape(PATHS[LIST]),
                     "GET", PATHS[LIST], 418, error_headers(), b"{}")
        self.refused(r"POST .* -> 201: status 201 is not documented", "POST", PATHS[SAVE], 201, TRACK_HEADERS, b"{}")

    def test_undocumented_method_is_refused_unless_405(self):
        self.refused("PATCH is not documented", "PATCH", PATHS[TRACK], 200, TRACK_HEADERS, json_bytes(track()))
        self.refused("HEAD is not documented", "HEAD", PATHS[SAVE], 200, TRACK_HEADERS, b"")

    def test_undocumented_path_is_refused(self):
        self.refused("no path template", "GET", "/v1/music/%s/playlists" % ORG, 200, TRACK_HEADERS, b"{}")

    # -- no body where none is allowed

    def test_304_with_a_body_is_refused(self):
        self.refused("a 304 answer must not have a body", "GET", PATHS[LIST], 304, LIST_HEADERS, self.page())

    def test_head_with_a_body_is_refused(self):
        self.refused("a HEAD answer must not have a body", "HEAD", PATHS[TRACK], 200, TRACK_HEADERS, json_bytes(track()))

    # -- headers

    def test_missing_required_header_is_refused(self):
        self.refused("required header ETag is missing", "GET", PATHS[LIST], 200,
                     [h for h in LIST_HEADERS if h[0] != "ETag"], self.page())
        self.refused("required header Retry-After is missing", "GET", PATHS[LIST], 429, error_headers(),
                     json_bytes(envelope(429, "RATE_LIMIT_EXCEEDED", "rate_limit_error", "m m", "s")))

    def test_wrong_header_value_is_refused(self):
        strong = [(n, 'W"x"' if n == "ETag" else v) for n, v in LIST_HEADERS]
        self.refused("header ETag", "GET", PATHS[LIST], 200, strong, self.page())
        no_store = [(n, "private, no-store" if n == "Cache-Control" else v) for n, v in LIST_HEADERS]
        self.refused("header Cache-Control", "GET", PATHS[LIST], 304, no_store, b"")
        self.refused("header Retry-After", "GET", PATHS[LIST], 503, error_headers(**{"Retry-After": "soon"}),
                     json_bytes(envelope(503, "SERVICE_UNAVAILABLE", "server_error", "m m", "s")))

    # -- collections and share links

    def test_good_collection_answers_pass(self):
        self.check("POST", PATHS[COLLECTIONS], 201, TRACK_HEADERS, json_bytes(collection(track_count=0)))
        self.check("POST", PATHS[COLLECTIONS], 201, TRACK_HEADERS,
                   json_bytes(collection(track_count=0, description=None, cover_track_id=None, cover_image_url=None)))
        page = {"items": [collection(track_count=None)], "limit": 50, "offset": 0}
        self.check("GET", PATHS[COLLECTIONS], 200, TRACK_HEADERS, json_bytes(page))
        self.check("HEAD", PATHS[COLLECTIONS] + "/", 200, TRACK_HEADERS, b"")
        self.check("GET", PATHS[COLLECTION], 200, TRACK_HEADERS, json_bytes(collection()))
        self.check("PATCH", PATHS[COLLECTION], 200, TRACK_HEADERS, json_bytes(collection(track_count=0)))
        self.check("DELETE", PATHS[COLLECTION], 200, TRACK_HEADERS, ack(COLL_ID, "Collection deleted."))
        entries = {"collection_id": COLL_ID, "items": [{"track_id": TRACK_ID, "position": 0,
                                                        "added_at": "2026-12-01T08:01:00Z"}], "limit": 200, "offset": 0}
        self.check("GET", PATHS[COLLECTION_TRACKS] + "?limit=500", 200, TRACK_HEADERS, json_bytes(entries))
        self.check("POST", PATHS[COLLECTION_TRACKS], 200, TRACK_HEADERS, ack(TRACK_ID, "Track added to collection."))
        self.check("DELETE", PATHS[COLLECTION_TRACK], 200, TRACK_HEADERS,
                   ack(TRACK_ID, "Track removed from collection."))
        self.check("PATCH", PATHS[COLLECTION_ORDER], 200, TRACK_HEADERS, ack(COLL_ID, "Collection reordered."))
        self.check("POST", PATHS[COLLECTIONS], 415, error_headers(), json_bytes(envelope(
            415, "UNSUPPORTED_MEDIA_TYPE", "invalid_request_error", "The request body must be JSON.", "x")))
        repeated = envelope(422, "VALIDATION_ERROR", "validation_error", "m m", "the key appears more than once")
        repeated["error"]["details"] = {"field": "zz"}
        self.check("PATCH", PATHS[COLLECTION], 422, error_headers(), json_bytes(repeated))
        self.check("GET", PATHS[COLLECTION_TRACKS], 404, error_headers(), json_bytes(envelope(
            404, "RESOURCE_NOT_FOUND", "not_found_error", "m m", "Collection not found")))

    def test_good_share_answers_pass(self):
        self.check("POST", PATHS[SHARE], 201, TRACK_HEADERS, json_bytes(share_created()))
        self.check("POST", PATHS[SHARE], 201, TRACK_HEADERS,
                   json_bytes(share_created(visibility="public", expires_at="2027-03-02T03:04:05Z")))
        self.check("DELETE", PATHS[SHARE_LINK], 200, TRACK_HEADERS, ack(LINK_ID, "Share link revoked."))
        self.check("GET", PATHS[SHARED], 200, TRACK_HEADERS, json_bytes(shared_link()))
        no_audio = shared_link()
        no_audio["track"]["playback_url"] = None
        self.check("GET", PATHS[SHARED], 200, TRACK_HEADERS, json_bytes(no_audio))
        self.check("GET", PATHS[SHARED], 200, TRACK_HEADERS, json_bytes(UNAVAILABLE))
        self.check("HEAD", PATHS[SHARED], 200, TRACK_HEADERS, b"")
        self.check("GET", "/v1/music/shared/x", 404, error_headers(), json_bytes(envelope(
            404, "RESOURCE_NOT_FOUND", "not_found_error", "m m", "Share link not found")))
        self.check("GET", PATHS[SHARED], 429, error_headers(**{"Retry-After": "1"}), json_bytes(envelope(
            429, "RATE_LIMIT_EXCEEDED", "rate_limit_error", "m m", "s")))
        saved = {"id": "mlib_1", "track_id": TRACK_ID, "source": "shared", "share_link_id": LINK_ID,
                 "created_at": "2026-12-02T03:10:00Z"}
        self.check("POST", PATHS[SHARED_SAVE], 201, TRACK_HEADERS, json_bytes(saved))
        self.check("POST", PATHS[SHARED_SAVE], 201, TRACK_HEADERS,
                   json_bytes(dict(saved, source="own", share_link_id=None)))

    def test_list_item_with_a_track_count_is_refused(self):
        self.refused(r"items\[0\]\.track_count", "GET", PATHS[COLLECTIONS], 200, TRACK_HEADERS,
                     json_bytes({"items": [collection()], "limit": 50, "offset": 0}))

    def test_collection_bodies_that_are_not_the_codes_are_refused(self):
        self.refused("track_count", "POST", PATHS[COLLECTIONS], 201, TRACK_HEADERS, json_bytes(collection()))
        self.refused("track_count", "GET", PATHS[COLLECTION], 200, TRACK_HEADERS,
                     json_bytes(collection(track_count=None)))
        self.refused("'owner' was unexpected", "GET", PATHS[COLLECTION], 200, TRACK_HEADERS,
                     json_bytes(collection(owner="u")))
        self.refused("cover_image_url", "GET", PATHS[COLLECTION], 200, TRACK_HEADERS,
                     json_bytes(collection(cover_image_url="ftp://x/a.png")))
        entries = {"collection_id": COLL_ID, "items": [{"track_id": TRACK_ID, "position": -1,
                                                        "added_at": "2026-12-01T08:01:00Z"}], "limit": 200, "offset": 0}
        self.refused(r"position", "GET", PATHS[COLLECTION_TRACKS], 200, TRACK_HEADERS, json_bytes(entries))
        self.refused("detail", "POST", PATHS[COLLECTION_TRACKS], 200, TRACK_HEADERS, ack(TRACK_ID, "Track added."))
        self.refused(r"\$\.id", "PATCH", PATHS[COLLECTION_ORDER], 200, TRACK_HEADERS,
                     ack(TRACK_ID, "Collection reordered."))

    def test_share_bodies_that_are_not_the_codes_are_refused(self):
        self.refused("token", "POST", PATHS[SHARE], 201, TRACK_HEADERS, json_bytes(share_created(token="shr_short")))
        self.refused("url", "POST", PATHS[SHARE], 201, TRACK_HEADERS,
                     json_bytes(share_created(url="https://localhost/v1/music/shared/shr_other")))
        self.refused("visibility", "POST", PATHS[SHARE], 201, TRACK_HEADERS,
                     json_bytes(share_created(visibility="private")))
        self.refused("oneOf|valid under each|is not valid under any", "GET", PATHS[SHARED], 200, TRACK_HEADERS,
                     json_bytes(dict(UNAVAILABLE, track=shared_link()["track"])))
        self.refused("oneOf|valid under each|is not valid under any", "GET", PATHS[SHARED], 200, TRACK_HEADERS,
                     json_bytes(shared_link(message="Hello there.")))
        self.refused("collection", "GET", PATHS[SHARED], 200, TRACK_HEADERS, json_bytes(shared_link(collection={})))
        no_licence = shared_link()
        del no_licence["track"]["licence"]
        self.refused("'licence' is a required property", "GET", PATHS[SHARED], 200, TRACK_HEADERS,
                     json_bytes(no_licence))
        self.refused("source", "POST", PATHS[SHARED_SAVE], 201, TRACK_HEADERS,
                     json_bytes({"id": "mlib_1", "track_id": TRACK_ID, "source": "saved", "share_link_id": None,
                                 "created_at": "2026-12-02T03:10:00Z"}))

    def test_errors_a_route_cannot_give_are_refused(self):
        self.refused("status 415 is not documented", "GET", PATHS[COLLECTION], 415, error_headers(),
                     json_bytes(envelope(415, "UNSUPPORTED_MEDIA_TYPE", "invalid_request_error", "m m", "s")))
        self.refused("status 401 is not documented", "GET", PATHS[SHARED], 401, error_headers(), json_bytes(envelope(
            401, "AUTHENTICATION_REQUIRED", "authentication_error", "m m", "s")))
        self.refused("INSUFFICIENT_PERMISSIONS", "POST", PATHS[SHARED_SAVE], 403, error_headers(), json_bytes(envelope(
            403, "ORGANIZATION_ACCESS_DENIED", "authorization_error", "m m", "s")))
        self.refused("status 404 is not documented", "POST", PATHS[COLLECTIONS], 404, error_headers(),
                     json_bytes(envelope(404, "RESOURCE_NOT_FOUND", "not_found_error", "m m", "s")))
        self.refused("status 422 is not documented", "GET", PATHS[COLLECTION], 422, error_headers(),
                     json_bytes(envelope(422, "VALIDATION_ERROR", "validation_error", "m m", "s")))
        self.refused("HEAD is not documented", "HEAD", PATHS[COLLECTION_ORDER], 200, TRACK_HEADERS, b"")
        self.refused("GET is not documented", "GET", PATHS[SHARED_SAVE], 200, TRACK_HEADERS, b"{}")
        self.refused("header Allow", "GET", PATHS[COLLECTION_TRACK], 405, error_headers(Allow="GET, HEAD, DELETE"),
                     json_bytes(envelope(405, "METHOD_NOT_ALLOWED", "invalid_request_error", "m m", "s")))


if __name__ == "__main__":
    unittest.main()
