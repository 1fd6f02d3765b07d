// The Idempotency-Key header's rules and the request fingerprint (http/idempotency_key).
#include <boost/test/unit_test.hpp>

#include "core/secrets.hpp"
#include "http/idempotency_key.hpp"

using namespace music_api;

BOOST_AUTO_TEST_CASE(idempotency_key_is_1_to_255_printable_ascii) {
  for (std::string_view good : {"a", "8e03978e-40d5-43e8-bc93-6894a57f9324", "with space ~!", "\"quoted\""}) {
    auto key = ParseIdempotencyKey(good);
    BOOST_REQUIRE(key);
    BOOST_CHECK_EQUAL(*key, good);
  }
  BOOST_CHECK(ParseIdempotencyKey(std::string(255, 'k')));
  for (const std::string& bad : {std::string(), std::string(256, 'k'), std::string("tab\there"),
                                 std::string("caf\xc3\xa9"), std::string("nul\0x", 5), std::string("del\x7f")}) {
    auto key = ParseIdempotencyKey(bad);
    BOOST_REQUIRE(!key);
    BOOST_CHECK(key.error().code == ErrorCode::kValidationError);
    BOOST_CHECK_EQUAL(key.error().field, "Idempotency-Key");
  }
}

BOOST_AUTO_TEST_CASE(idempotency_key_applies_to_writes_only) {
  for (std::string_view m : {"POST", "PATCH", "DELETE"}) BOOST_CHECK(TakesIdempotencyKey(m));
  for (std::string_view m : {"GET", "HEAD", "OPTIONS", "PUT", "post"}) BOOST_CHECK(!TakesIdempotencyKey(m));
}

BOOST_AUTO_TEST_CASE(fingerprint_covers_method_path_query_and_body) {
  Request base{};
  base.method = "POST";
  base.uri = "/v1/music/org_a/collections";
  base.body = R"({"name":"A"})";
  const std::string fp = RequestFingerprint(base);
  BOOST_CHECK_EQUAL(fp.size(), 64u);
  BOOST_CHECK_EQUAL(fp, RequestFingerprint(base));
  Request other = base;
  other.method = "PATCH";
  BOOST_CHECK_NE(fp, RequestFingerprint(other));
  other = base;
  other.uri = "/v1/music/org_a/collections?x=1";
  BOOST_CHECK_NE(fp, RequestFingerprint(other));
  other = base;
  other.body = R"({"name":"B"})";
  BOOST_CHECK_NE(fp, RequestFingerprint(other));
  // The separators keep parts from sliding into each other.
  Request a{}, b{};
  a.method = "POST", a.uri = "/x\ny", a.body = "";
  b.method = "POST", b.uri = "/x", b.body = "y";
  BOOST_CHECK_NE(RequestFingerprint(a), RequestFingerprint(b));
}

BOOST_AUTO_TEST_CASE(stored_answers_are_sealed_to_their_row_and_pepper) {
  const std::string pepper(32, 'p'), body = R"({"id":"mslink_x","token":"shr_secret"})";
  const std::string sealed = SealAnswer(pepper, "mk_a k1", body);
  BOOST_CHECK(sealed.find("shr_secret") == std::string::npos);
  BOOST_CHECK_NE(sealed, SealAnswer(pepper, "mk_a k1", body));  // a fresh nonce each time
  auto opened = OpenAnswer(pepper, "mk_a k1", sealed);
  BOOST_REQUIRE(opened);
  BOOST_CHECK_EQUAL(*opened, body);
  BOOST_CHECK(!OpenAnswer(std::string(32, 'q'), "mk_a k1", sealed));  // another pepper
  BOOST_CHECK(!OpenAnswer(pepper, "mk_b k1", sealed));                // moved to another row
  std::string tampered = sealed;
  tampered[30] = tampered[30] == '0' ? '1' : '0';
  BOOST_CHECK(!OpenAnswer(pepper, "mk_a k1", tampered));
  BOOST_CHECK(!OpenAnswer(pepper, "mk_a k1", "zz"));
  BOOST_CHECK_EQUAL(*OpenAnswer(pepper, "ctx", SealAnswer(pepper, "ctx", "")), "");
}
