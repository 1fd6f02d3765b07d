// Routing, key extraction and the authorization decision, without a database.
#include <boost/test/unit_test.hpp>

#include "auth/auth.hpp"
#include "core/secrets.hpp"
#include "http/route.hpp"

using namespace music_api;

BOOST_AUTO_TEST_SUITE(route)

BOOST_AUTO_TEST_CASE(matches_the_listing_with_or_without_slash) {
  for (std::string_view path : {"/v1/music/org_abc/tracks", "/v1/music/org_abc/tracks/"}) {
    auto r = MatchRoute("GET", path);
    BOOST_REQUIRE(r);
    BOOST_CHECK_EQUAL(*r->organization_id, "org_abc");
  }
  BOOST_CHECK(MatchRoute("HEAD", "/v1/music/org_abc/tracks"));
}

BOOST_AUTO_TEST_CASE(other_paths_are_404_before_methods) {
  for (std::string_view path :
       {"/v1/music/", "/v1/music/org_a", "/v1/music/org_a/other", "/v1/music//tracks", "/v1/music/org_a/tracks/x/other",
        "/v1/music/org_a/tracks//", "/v1/music/org_a/tracks/mtrack_a/save/x", "/v1/music/org_a/tracks/mtrack_a//",
        "/v1/music/org_a/tracksx", "/v2/music/org_a/tracks"}) {
    auto r = MatchRoute("POST", path);
    BOOST_REQUIRE(!r);
    BOOST_CHECK(r.error().code == ErrorCode::kResourceNotFound);
  }
}

BOOST_AUTO_TEST_CASE(other_methods_are_405_with_the_rows_allow) {
  for (std::string_view method : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "get", "GE", "GET, HEAD"}) {
    auto r = MatchRoute(method, "/v1/music/org_a/tracks");
    BOOST_REQUIRE(!r);
    BOOST_CHECK(r.error().code == ErrorCode::kMethodNotAllowed);
    BOOST_CHECK_EQUAL(r.error().allow, "GET, HEAD");
  }
}

BOOST_AUTO_TEST_CASE(track_and_save_routes_carry_both_ids_and_their_own_allow) {
  auto track = MatchRoute("GET", "/v1/music/org_a/tracks/mtrack_b");
  BOOST_REQUIRE(track);
  BOOST_CHECK(track->id == RouteId::kTrack);
  BOOST_CHECK_EQUAL(*track->organization_id, "org_a");
  BOOST_CHECK_EQUAL(*track->track_id, "mtrack_b");
  BOOST_CHECK(MatchRoute("DELETE", "/v1/music/org_a/tracks/mtrack_b/")->id == RouteId::kTrack);
  auto save = MatchRoute("POST", "/v1/music/org_a/tracks/mtrack_b/save");
  BOOST_REQUIRE(save);
  BOOST_CHECK(save->id == RouteId::kTrackSave);
  BOOST_CHECK_EQUAL(*save->track_id, "mtrack_b");
  BOOST_CHECK(MatchRoute("DELETE", "/v1/music/org_a/tracks/mtrack_b/save")->id == RouteId::kTrackSave);
  auto put = MatchRoute("PUT", "/v1/music/org_a/tracks/mtrack_b");
  BOOST_REQUIRE(!put);
  BOOST_CHECK_EQUAL(put.error().allow, "GET, HEAD, DELETE");
  BOOST_CHECK_EQUAL(put.error().SystemMessage(), "Allowed methods: GET, HEAD, DELETE");
  auto get_save = MatchRoute("GET", "/v1/music/org_a/tracks/mtrack_b/save");
  BOOST_REQUIRE(!get_save);
  BOOST_CHECK_EQUAL(get_save.error().allow, "POST, DELETE");
  // A malformed track id still routes (a 404 once the caller is known), like a malformed org.
  for (std::string_view path :
       {"/v1/music/org_a/tracks/x", "/v1/music/org_a/tracks/mtrack_%27", "/v1/music/org_a/tracks/mtrack_%zz/save"}) {
    auto r = MatchRoute(path.ends_with("save") ? "POST" : "GET", path);
    BOOST_REQUIRE(r);
    BOOST_CHECK(!r->track_id);
    BOOST_CHECK_EQUAL(*r->organization_id, "org_a");
  }
}

BOOST_AUTO_TEST_CASE(status_and_ping_are_rows_of_the_table) {
  auto status = MatchRoute("GET", "/music-api/status", "status");
  BOOST_REQUIRE(status);
  BOOST_CHECK(status->id == RouteId::kStatus);
  auto ping = MatchRoute("HEAD", "/music-api/ping", "ping");
  BOOST_REQUIRE(ping);
  BOOST_CHECK(ping->id == RouteId::kPing);
  auto post = MatchRoute("POST", "/music-api/ping", "ping");
  BOOST_REQUIRE(!post);
  BOOST_CHECK(post.error().code == ErrorCode::kMethodNotAllowed);
  // Only nginx's host-only location sets the internal name; with it, nothing else matches.
  BOOST_CHECK(MatchRoute("GET", "/v1/music/org_a/tracks", "other").error().code == ErrorCode::kResourceNotFound);
  BOOST_CHECK(MatchRoute("GET", "/v1/music/org_a/tracks", "status")->id == RouteId::kStatus);
  // Without it, the host-only paths are just unknown paths.
  BOOST_CHECK(MatchRoute("GET", "/music-api/status").error().code == ErrorCode::kResourceNotFound);
  BOOST_CHECK(MatchRoute("GET", "/v1/music/org_a/tracks")->id == RouteId::kListTracks);
}

BOOST_AUTO_TEST_CASE(malformed_org_still_routes_without_an_id) {
  for (std::string_view path :
       {"/v1/music/org_%27/tracks", "/v1/music/not-an-org/tracks", "/v1/music/org_%zz/tracks",
        "/v1/music/org_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/tracks"}) {
    auto r = MatchRoute("GET", path);
    BOOST_REQUIRE(r);
    BOOST_CHECK(!r->organization_id);
  }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(auth)

BOOST_AUTO_TEST_CASE(presented_key_sources) {
  BOOST_CHECK_EQUAL(*PresentedApiKey("abc", "Bearer xyz"), "abc");
  BOOST_CHECK_EQUAL(*PresentedApiKey("", "Bearer xyz"), "xyz");
  BOOST_CHECK_EQUAL(*PresentedApiKey("", "bEaReR   xyz"), "xyz");
  BOOST_CHECK(!PresentedApiKey("", ""));
  BOOST_CHECK(!PresentedApiKey("", "Bearer "));
  BOOST_CHECK(!PresentedApiKey("", "Basic dXNlcjpwYXNz"));
  BOOST_CHECK(!PresentedApiKey("", "Bearerxyz"));
}

BOOST_AUTO_TEST_CASE(key_format) {
  ApiKeyParts key = NewApiKey();
  auto parsed = ParseApiKey(FormatApiKey(key));
  BOOST_REQUIRE(parsed);
  BOOST_CHECK_EQUAL(parsed->id, key.id);
  BOOST_CHECK_EQUAL(parsed->secret, key.secret);
  BOOST_CHECK(IsApiKeyId(key.id));
  BOOST_CHECK(!ParseApiKey("mk_short_secret"));
  BOOST_CHECK(!ParseApiKey(FormatApiKey(key) + "x"));
  BOOST_CHECK(!ParseApiKey("' OR 1=1 --"));
}

BOOST_AUTO_TEST_CASE(authorization_decisions) {
  const std::string pepper = "0123456789abcdef0123";
  ApiKeyParts key = NewApiKey();
  const int64_t now = 1'800'000'000;
  KeyRecord good{HashApiKeySecret(pepper, key), "usr_1", false, std::nullopt, true, true};
  auto code = [&](std::optional<KeyRecord> record, bool org_ok = true) {
    auto r = Authorize(record, HashApiKeySecret(pepper, key), org_ok, now);
    return r ? std::string("ok") : std::string(Describe(r.error().code).code);
  };
  BOOST_CHECK_EQUAL(code(good), "ok");
  BOOST_CHECK_EQUAL(code(std::nullopt), "INVALID_API_KEY");
  KeyRecord wrong = good;
  wrong.secret_hash = HashApiKeySecret(pepper, NewApiKey());
  wrong.expires_at = now - 10;  // a wrong secret never learns that the key expired
  BOOST_CHECK_EQUAL(code(wrong), "INVALID_API_KEY");
  KeyRecord revoked = good;
  revoked.revoked = true;
  BOOST_CHECK_EQUAL(code(revoked), "INVALID_API_KEY");
  KeyRecord expired = good;
  expired.expires_at = now;  // expiry is inclusive of its instant
  BOOST_CHECK_EQUAL(code(expired), "API_KEY_EXPIRED");
  KeyRecord not_yet = good;
  not_yet.expires_at = now + 1;
  BOOST_CHECK_EQUAL(code(not_yet), "ok");
  BOOST_CHECK_EQUAL(code(good, false), "ORGANIZATION_ACCESS_DENIED");
  KeyRecord outsider = good;
  outsider.member = false;
  BOOST_CHECK_EQUAL(code(outsider), "ORGANIZATION_ACCESS_DENIED");
  KeyRecord no_capability = good;
  no_capability.can_generate = false;
  BOOST_CHECK_EQUAL(code(no_capability), "INSUFFICIENT_PERMISSIONS");
  // The pepper matters: the same secret under another pepper does not verify.
  BOOST_CHECK_EQUAL(
      code(KeyRecord{HashApiKeySecret("another-pepper-value!", key), "usr_1", false, std::nullopt, true, true}),
      "INVALID_API_KEY");
}

BOOST_AUTO_TEST_SUITE_END()
