#!/usr/bin/env python3
"""docs/openapi.yaml against the OAS 3.1 schema, the code's error tables and the built routes,
and proof that the checks in tests/support/openapi.py can fail. Needs no server or database.

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
NGINX_DIR = os.path.join(REPO, "nginx")

LIST = "/v1/music/{organization_id}/tracks"
TRACK = "/v1/music/{organization_id}/tracks/{track_id}"
SAVE = "/v1/music/{organization_id}/tracks/{track_id}/save"
MEDIA = "/v1/media/{track_id}/{file}"
# Issue 11's collection and share routes are not built yet, so they must not be documented.
ROUTE_METHODS = {LIST: {"GET"}, TRACK: {"GET", "DELETE"}, SAVE: {"POST", "DELETE"}, MEDIA: {"GET"}}
ROUTE_ALLOW = {LIST: "GET, HEAD", TRACK: "GET, HEAD, DELETE", SAVE: "POST, DELETE", MEDIA: "GET, HEAD"}
API_ROUTES = (LIST, TRACK, SAVE)
ALL_ROUTES = API_ROUTES + (MEDIA,)
# Codes only the list can give: the track and save routes read no query parameters.
LIST_ONLY_CODES = {"VALIDATION_ERROR"}
# Which documented routes can get each error nginx makes: those of its /v1/music/ location (the
# API's routes), of its /v1/media/ location, or of the whole server (music-api-errors.conf, and
# the 404 every location shares). A new nginx code fails the test until it is placed here.
NGINX_CODE_ROUTES = {
    "RESOURCE_NOT_FOUND": ALL_ROUTES,
    "BAD_REQUEST": ALL_ROUTES,
    "URI_TOO_LONG": ALL_ROUTES,
    "HEADERS_TOO_LARGE": ALL_ROUTES,
    "SERVICE_UNAVAILABLE": API_ROUTES,
    "GATEWAY_TIMEOUT": API_ROUTES,
    "PAYLOAD_TOO_LARGE": API_ROUTES,
    "RATE_LIMIT_EXCEEDED": API_ROUTES,
    "METHOD_NOT_ALLOWED": (MEDIA,),
    "PLAYBACK_URL_INVALID": (MEDIA,),
    "PLAYBACK_URL_EXPIRED": (MEDIA,),
    "RANGE_NOT_SATISFIABLE": (MEDIA,),
    # Only for the host-only /music-api/status and /music-api/ping, which the document leaves
    # out: the code must be named in it, but no documented route gets it.
    "FORBIDDEN": (),
}

ORG = "org_contract1"
TRACK_ID = "mtrack_contract1"
PATHS = {LIST: "/v1/music/%s/tracks" % ORG,
         TRACK: "/v1/music/%s/tracks/%s" % (ORG, TRACK_ID),
         SAVE: "/v1/music/%s/tracks/%s/save" % (ORG, TRACK_ID),
         MEDIA: "/v1/media/%s/master.mp3" % TRACK_ID}
REQUEST_ID = "req_8ZkQ2mXv4TnR7pLc1sWb9yHd"
TIMESTAMP = "2026-06-28T10:30:00Z"
JSON_TYPE = musicapi.JSON_CONTENT_TYPE
SIGNED_URL = ("https://api.example.com/v1/media/%s/master.mp3?exp=1782643860&kid=k1&sig=%s"
              % (TRACK_ID, "A" * 43))


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


def track(**changes):
    body = {"id": TRACK_ID, "title": "Late Night Study", "engine": "studio", "mode": "creation",
            "measured_duration_seconds": 119.4, "instrumental": True, "licence_class": "personal_only",
            "created_at": "2026-06-28T10:31:00Z", "playback_url": SIGNED_URL,
            "stem_urls": {"vocals": SIGNED_URL}}
    body.update(changes)
    return body


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

    def test_405_allow_lists_each_routes_methods(self):
        for template, allow in ROUTE_ALLOW.items():
            with self.subTest(route=template):
                body = json_bytes(envelope(405, "METHOD_NOT_ALLOWED", "invalid_request_error",
                                           "This method is not allowed for this resource.", "Allowed methods: " + allow))
                openapi.check_response(self.doc, "PUT", PATHS[template], 405, error_headers(Allow=allow), body)
                with self.assertRaisesRegex(AssertionError, "header Allow"):
                    openapi.check_response(self.doc, "PUT", PATHS[template], 405,
                                           error_headers(Allow=allow + ", PUT"), body)

    def test_only_the_media_route_needs_no_key(self):
        self.assertEqual(self.doc["security"], [{"ApiKeyHeader": []}, {"BearerAuth": []}])
        schemes = self.doc["components"]["securitySchemes"]
        self.assertEqual((schemes["ApiKeyHeader"]["type"], schemes["ApiKeyHeader"]["in"],
                          schemes["ApiKeyHeader"]["name"]), ("apiKey", "header", "X-API-Key"))
        self.assertEqual((schemes["BearerAuth"]["type"], schemes["BearerAuth"]["scheme"]), ("http", "bearer"))
        for method, template in openapi.operations(self.doc):
            operation = self.doc["paths"][template][method.lower()]
            with self.subTest(method=method, route=template):
                if template == MEDIA:
                    self.assertEqual(operation.get("security"), [])
                else:
                    self.assertNotIn("security", operation)

    def test_every_api_error_code_is_documented_on_every_route_that_can_give_it(self):
        for status, code, etype, message, system_message in api_error_rows():
            self.assertIn(code, self.text)
            body = envelope(status, code, etype, message, system_message)
            for template in API_ROUTES:
                if code in LIST_ONLY_CODES and template != LIST:
                    continue
                for method in ROUTE_METHODS[template]:
                    with self.subTest(code=code, method=method, route=template):
                        self.assertEqual(schema_errors(self.doc, method, template, status, body), [])

    def test_every_nginx_error_code_is_documented_on_every_route_that_can_give_it(self):
        bodies = nginx_error_bodies()
        self.assertTrue(bodies)
        for conf, status, body in bodies:
            code = body["error"]["code"]
            self.assertIn(code, self.text, conf)
            self.assertIn(code, NGINX_CODE_ROUTES, "%s: say in NGINX_CODE_ROUTES which routes get %s" % (conf, code))
            for template in NGINX_CODE_ROUTES[code]:
                for method in ROUTE_METHODS[template]:
                    with self.subTest(conf=conf, code=code, method=method, route=template):
                        self.assertEqual(schema_errors(self.doc, method, template, status, body), [])

    def test_list_parameters_and_422_fields_are_the_codes(self):
        names, fields = list_query_fields()
        self.assertEqual(len(names), 5, names)
        operation = self.doc["paths"][LIST]["get"]
        parameters = [openapi.resolve(self.doc, p) for p in operation["parameters"]]
        query = [p["name"] for p in parameters if p["in"] == "query"]
        self.assertEqual(query, names)
        failed = openapi.resolve(self.doc, operation["responses"]["422"])
        field = failed["content"]["application/json"]["schema"]["allOf"][1]["properties"]["error"]["properties"][
            "details"]["properties"]["field"]
        self.assertEqual(set(field["enum"]), fields)

    def test_track_keys_are_the_list_items_keys_in_order(self):
        track_schema = self.doc["components"]["schemas"]["Track"]
        self.assertEqual(track_schema["required"], musicapi.ITEM_KEYS)
        self.assertEqual(list(track_schema["properties"]), musicapi.ITEM_KEYS)
        entry = self.doc["components"]["schemas"]["LibraryEntry"]
        self.assertEqual(list(entry["properties"]), ["id", "track_id", "source", "created_at", "saved"])

    def test_examples_match_their_schemas(self):
        checked = 0
        for method, template in openapi.operations(self.doc):
            responses = self.doc["paths"][template][method.lower()]["responses"]
            for status in responses:
                media = openapi.resolve(self.doc, responses[status]).get("content", {}).get("application/json", {})
                examples = [media["example"]] if "example" in media else []
                examples += [e["value"] for e in media.get("examples", {}).values()]
                for example in examples:
                    with self.subTest(method=method, route=template, status=status):
                        self.assertEqual(schema_errors(self.doc, method, template, int(status), example), [])
                        checked += 1
        self.assertGreaterEqual(checked, 5)


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
        self.refused("no path template", "GET", "/v1/music/%s/collections" % ORG, 200, TRACK_HEADERS, b"{}")

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


if __name__ == "__main__":
    unittest.main()
