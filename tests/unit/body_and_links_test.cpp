// Request bodies, list-page validators and links, and the media URL signature, without a database.
#include <boost/test/unit_test.hpp>

#include "core/media_keys.hpp"
#include "core/secrets.hpp"
#include "http/json_body.hpp"
#include "http/page_links.hpp"
#include "http/route.hpp"

using namespace music_api;

namespace {
constexpr std::string_view kJson = "application/json";

std::string FieldOf(const Result<JsonBody>& r) { return r ? std::string("<ok>") : r.error().field; }
}  // namespace

BOOST_AUTO_TEST_SUITE(json_body)

BOOST_AUTO_TEST_CASE(media_type_is_json_with_any_parameters) {
  for (std::string_view type : {"application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8",
                                "application/json ; x=y"}) {
    BOOST_CHECK_MESSAGE(JsonBody::Parse(type, "{}", false), type);
  }
  for (std::string_view type : {"", "text/plain", "application/jsonx", "application/x-json", "json"}) {
    auto r = JsonBody::Parse(type, "{}", false);
    BOOST_REQUIRE(!r);
    BOOST_CHECK(r.error().code == ErrorCode::kUnsupportedMediaType);
  }
  // An optional body may be absent (then no Content-Type is needed).
  BOOST_CHECK(JsonBody::Parse("", "", true));
  BOOST_CHECK(!JsonBody::Parse("", "", false));
}

BOOST_AUTO_TEST_CASE(malformed_deep_repeated_and_non_objects_are_422) {
  BOOST_CHECK_EQUAL(FieldOf(JsonBody::Parse(kJson, "{\"a\":", false)), "body");
  BOOST_CHECK_EQUAL(FieldOf(JsonBody::Parse(kJson, "[]", false)), "body");
  BOOST_CHECK_EQUAL(FieldOf(JsonBody::Parse(kJson, "\"x\"", false)), "body");
  BOOST_CHECK_EQUAL(FieldOf(JsonBody::Parse(kJson, "{\"a\":\"\xff\"}", false)), "body");  // not UTF-8
  BOOST_CHECK_EQUAL(FieldOf(JsonBody::Parse(kJson, "{\"name\":1,\"name\":2}", false)), "name");
  BOOST_CHECK_EQUAL(FieldOf(JsonBody::Parse(kJson, "{\"a\":{\"k\":1,\"k\":2}}", false)), "k");
  BOOST_CHECK(JsonBody::Parse(kJson, "{\"a\":{\"k\":1},\"b\":{\"k\":2}}", false));  // same key, other objects
  std::string deep = "{\"a\":" + std::string(7, '[') + std::string(7, ']') + "}";
  BOOST_CHECK(JsonBody::Parse(kJson, deep, false));
  std::string deeper = "{\"a\":" + std::string(8, '[') + std::string(8, ']') + "}";
  BOOST_CHECK_EQUAL(FieldOf(JsonBody::Parse(kJson, deeper, false)), "body");
  BOOST_CHECK_EQUAL(FieldOf(JsonBody::Parse(kJson, "{\"a\":\"" + std::string(kMaxBodyBytes, 'x') + "\"}", false)),
                    "body");
}

BOOST_AUTO_TEST_CASE(fields_by_type) {
  auto body = JsonBody::Parse(kJson, R"({"s":"x","n":null,"i":3,"f":2.0,"h":1.5,"a":["p","q"],"b":[1]})", false);
  BOOST_REQUIRE(body);
  BOOST_CHECK(body->String("s")->presence == JsonBody::Presence::kValue);
  BOOST_CHECK(body->String("n")->presence == JsonBody::Presence::kNull);
  BOOST_CHECK(body->String("missing")->presence == JsonBody::Presence::kAbsent);
  BOOST_CHECK_EQUAL(body->String("i").error().field, "i");
  BOOST_CHECK_EQUAL(body->Int("i")->value, 3);
  BOOST_CHECK_EQUAL(body->Int("f")->value, 2);
  BOOST_CHECK(!body->Int("h"));
  BOOST_CHECK(!body->Int("s"));
  BOOST_CHECK_EQUAL(body->StringArray("a")->size(), 2u);
  BOOST_CHECK(!body->StringArray("b"));
  BOOST_CHECK(!body->StringArray("missing"));
}

BOOST_AUTO_TEST_CASE(characters_are_code_points) {
  BOOST_CHECK_EQUAL(CountCharacters("abc"), 3u);
  BOOST_CHECK_EQUAL(CountCharacters("\xc3\xa9\xc3\xa9"), 2u);  // éé
  BOOST_CHECK_EQUAL(CountCharacters("\xf0\x9f\x8e\xb5"), 1u);  // one emoji, 4 bytes
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(page_links)

BOOST_AUTO_TEST_CASE(weak_etags_match_weakly) {
  std::string tag = WeakEtag("{\"items\":[]}");
  BOOST_CHECK(tag.starts_with("W/\"") && tag.size() == 36);
  BOOST_CHECK_EQUAL(tag, WeakEtag("{\"items\":[]}"));
  BOOST_CHECK_NE(tag, WeakEtag("{\"items\":[1]}"));
  BOOST_CHECK(IfNoneMatch(tag, tag));
  BOOST_CHECK(IfNoneMatch(tag.substr(2), tag));  // the strong form of the same tag
  BOOST_CHECK(IfNoneMatch("\"other\", " + tag, tag));
  BOOST_CHECK(IfNoneMatch("*", tag));
  BOOST_CHECK(!IfNoneMatch("W/\"other\"", tag));
  BOOST_CHECK(!IfNoneMatch("", tag));
}

BOOST_AUTO_TEST_CASE(links_carry_the_window_and_the_filters) {
  ListParams params;
  params.limit = 10;
  params.offset = 5;
  params.mode = "deep focus";
  std::string out;
  AppendPageLinks(out, "org_a", params, true);
  BOOST_CHECK_EQUAL(out,
                    "</v1/music/org_a/tracks?limit=10&offset=0&mode=deep%20focus>; rel=\"first\", "
                    "</v1/music/org_a/tracks?limit=10&offset=0&mode=deep%20focus>; rel=\"prev\", "
                    "</v1/music/org_a/tracks?limit=10&offset=15&mode=deep%20focus>; rel=\"next\"");
  out.clear();
  params.offset = 0;
  params.mode.reset();
  AppendPageLinks(out, "org_a", params, false);
  BOOST_CHECK_EQUAL(out, "</v1/music/org_a/tracks?limit=10&offset=0>; rel=\"first\"");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(media_urls)

BOOST_AUTO_TEST_CASE(the_signature_covers_path_expiry_and_key) {
  MediaSigner signer{"k1", "secretsecretsecretsecretsecretse", 300, ""};
  std::string url;
  AppendSignedMediaUrl(url, signer, "https://h", "mtrack_a", "master.ogg", 1000);
  const std::string sig = HmacSha256Base64Url(signer.secret, "/v1/media/mtrack_a/master.ogg\n1000\nk1");
  BOOST_CHECK_EQUAL(url, "https://h/v1/media/mtrack_a/master.ogg?exp=1000&kid=k1&sig=" + sig);
  BOOST_CHECK_EQUAL(sig.size(), 43u);  // 32 bytes, base64url without padding
  BOOST_CHECK_NE(sig, HmacSha256Base64Url(signer.secret, "/v1/media/mtrack_a/master.ogg\n1001\nk1"));
}

BOOST_AUTO_TEST_CASE(key_files_name_their_current_key) {
  auto good = ParseMediaKeyFile(R"({"current":"k2","keys":{"k2":")" + std::string(43, 'a') + R"(","k1":")" +
                                std::string(43, 'b') + "\"}}");
  BOOST_REQUIRE(good);
  BOOST_CHECK_EQUAL(*good->Secret("k1"), std::string(43, 'b'));
  BOOST_CHECK(!ParseMediaKeyFile(R"({"current":"k3","keys":{"k2":")" + std::string(43, 'a') + "\"}}"));
  BOOST_CHECK(!ParseMediaKeyFile(R"({"current":"k2","keys":{"k2":"short"}})"));
  BOOST_CHECK(!ParseMediaKeyFile("not json"));
  auto again = ParseMediaKeyFile(FormatMediaKeyFile(*good));
  BOOST_REQUIRE(again);
  BOOST_CHECK_EQUAL(again->current, "k2");
}

BOOST_AUTO_TEST_CASE(share_tokens_are_long_and_stored_hashed) {
  std::string token = NewShareToken();
  BOOST_CHECK(token.starts_with("shr_") && token.size() == 47);
  BOOST_CHECK_NE(token, NewShareToken());
  std::string hash = HashShareToken("pepper-of-some-length", token);
  BOOST_CHECK_EQUAL(hash.size(), 64u);
  BOOST_CHECK(hash.find(token.substr(4)) == std::string::npos);
  BOOST_CHECK_NE(hash, HashShareToken("another-pepper-value", token));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(library_routes)

BOOST_AUTO_TEST_CASE(collection_and_share_routes_with_their_allow) {
  struct Case {
    std::string_view path;
    RouteId id;
    std::string_view allow;
  };
  const Case cases[] = {
      {"/v1/music/org_a/collections", RouteId::kCollections, "GET, HEAD, POST"},
      {"/v1/music/org_a/collections/mcoll_b", RouteId::kCollection, "GET, HEAD, PATCH, DELETE"},
      {"/v1/music/org_a/collections/mcoll_b/tracks", RouteId::kCollectionTracks, "GET, HEAD, POST"},
      {"/v1/music/org_a/collections/mcoll_b/tracks/mtrack_c", RouteId::kCollectionTrack, "DELETE"},
      {"/v1/music/org_a/collections/mcoll_b/order", RouteId::kCollectionOrder, "PATCH"},
      {"/v1/music/org_a/tracks/mtrack_c/share", RouteId::kTrackShare, "POST"},
      {"/v1/music/org_a/shares/mslink_d", RouteId::kShare, "DELETE"},
      {"/v1/music/shared/shr_e", RouteId::kSharedLink, "GET, HEAD"},
      {"/v1/music/shared/shr_e/save", RouteId::kSharedSave, "POST"},
  };
  for (const auto& c : cases) {
    auto put = MatchRoute("PUT", c.path);
    BOOST_REQUIRE_MESSAGE(!put, c.path);
    BOOST_CHECK_EQUAL(put.error().allow, c.allow);
    std::string_view method = c.allow.substr(0, c.allow.find(','));
    auto r = MatchRoute(method, c.path);
    BOOST_REQUIRE_MESSAGE(r, c.path);
    BOOST_CHECK(r->id == c.id);
  }
  auto entry = MatchRoute("DELETE", "/v1/music/org_a/collections/mcoll_b/tracks/mtrack_c");
  BOOST_CHECK_EQUAL(*entry->collection_id, "mcoll_b");
  BOOST_CHECK_EQUAL(*entry->track_id, "mtrack_c");
  BOOST_CHECK_EQUAL(*MatchRoute("GET", "/v1/music/shared/shr_e")->token, "shr_e");
  BOOST_CHECK(!MatchRoute("GET", "/v1/music/shared/not-a-token")->token);
  BOOST_CHECK(!MatchRoute("GET", "/v1/music/org_a/collections/x")->collection_id);
  // "shared" is never an org: its paths are the share routes or nothing.
  BOOST_CHECK(MatchRoute("GET", "/v1/music/shared/tracks").value().id == RouteId::kSharedLink);
  BOOST_CHECK(!MatchRoute("GET", "/v1/music/shared/x/tracks"));
}

BOOST_AUTO_TEST_SUITE_END()
