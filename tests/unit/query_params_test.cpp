// ParseListParams: every rule of the query string, without a database.
#include <boost/test/unit_test.hpp>

#include "http/query_params.hpp"

using namespace music_api;

namespace {

std::string FieldOf(std::string_view query) {
  auto result = ParseListParams(query);
  BOOST_REQUIRE_MESSAGE(!result, "expected a 422 for " << query);
  BOOST_CHECK(result.error().code == ErrorCode::kValidationError);
  return result.error().field;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(query_params)

BOOST_AUTO_TEST_CASE(defaults_when_absent_or_empty) {
  for (std::string_view q : {"", "limit=&offset=", "&&", "mode=&engine=&collection_id="}) {
    auto p = ParseListParams(q);
    BOOST_REQUIRE(p);
    BOOST_CHECK_EQUAL(p->limit, 50);
    BOOST_CHECK_EQUAL(p->offset, 0);
    BOOST_CHECK(!p->mode && !p->engine && !p->collection_id);
  }
}

BOOST_AUTO_TEST_CASE(accepts_bounds) {
  auto p = ParseListParams("limit=100&offset=2147483647");
  BOOST_REQUIRE(p);
  BOOST_CHECK_EQUAL(p->limit, 100);
  BOOST_CHECK_EQUAL(p->offset, 2147483647);
  p = ParseListParams("limit=1&offset=0");
  BOOST_REQUIRE(p);
  BOOST_CHECK_EQUAL(p->limit, 1);
  p = ParseListParams("limit=007");
  BOOST_REQUIRE(p);
  BOOST_CHECK_EQUAL(p->limit, 7);
}

BOOST_AUTO_TEST_CASE(rejects_bad_integers) {
  for (std::string_view v :
       {"abc", "1.5", "-1", "+5", "%205", "101", "0", "0x10", "99999999999999999999", "1e2", "5%20", "%2B5"}) {
    BOOST_CHECK_EQUAL(FieldOf("limit=" + std::string(v)), "limit");
  }
  for (std::string_view v : {"abc", "-1", "2147483648", "+0", "1.0", "99999999999999999999999"}) {
    BOOST_CHECK_EQUAL(FieldOf("offset=" + std::string(v)), "offset");
  }
}

BOOST_AUTO_TEST_CASE(first_bad_parameter_in_fixed_order) {
  BOOST_CHECK_EQUAL(FieldOf("offset=x&limit=y"), "limit");
  BOOST_CHECK_EQUAL(FieldOf("collection_id=bad&engine=%ff&mode=%00&offset=-1"), "offset");
  BOOST_CHECK_EQUAL(FieldOf("collection_id=bad&engine=%ff&mode=%00"), "mode");
  BOOST_CHECK_EQUAL(FieldOf("collection_id=bad&engine=%ff"), "engine");
  BOOST_CHECK_EQUAL(FieldOf("collection_id=bad"), "collection_id");
}

BOOST_AUTO_TEST_CASE(duplicates_and_malformed_encoding) {
  BOOST_CHECK_EQUAL(FieldOf("limit=1&limit=2"), "limit");
  // A repeat counts as a bad value at its field's place in the order.
  BOOST_CHECK_EQUAL(FieldOf("mode=x&mode=y&limit=0"), "limit");
  BOOST_CHECK_EQUAL(FieldOf("limit=abc&offset=1&offset=2"), "limit");
  BOOST_CHECK_EQUAL(FieldOf("collection_id=mcoll_a&collection_id=mcoll_b&engine=%ff"), "engine");
  BOOST_CHECK_EQUAL(FieldOf("engine=%ff&mode=a&mode=b"), "mode");
  BOOST_CHECK_EQUAL(FieldOf("mode=a&mode="), "mode");
  // Broken encoding in a known parameter's value names that parameter, at its place in the order.
  BOOST_CHECK_EQUAL(FieldOf("mode=%zz"), "mode");
  BOOST_CHECK_EQUAL(FieldOf("mode=%"), "mode");
  BOOST_CHECK_EQUAL(FieldOf("mode=%4"), "mode");
  BOOST_CHECK_EQUAL(FieldOf("limit=%zz"), "limit");
  BOOST_CHECK_EQUAL(FieldOf("collection_id=mcoll_%zz"), "collection_id");
  BOOST_CHECK_EQUAL(FieldOf("engine=%zz&limit=0"), "limit");
  BOOST_CHECK_EQUAL(FieldOf("collection_id=%zz&engine=%ff"), "engine");
  BOOST_CHECK_EQUAL(FieldOf("mode=%zz&mode=a"), "mode");
  // Only when no parameter can be named: a broken name, or a broken value of an unknown name.
  BOOST_CHECK_EQUAL(FieldOf("limit=5&x=%zz"), "query");
  BOOST_CHECK_EQUAL(FieldOf("%=1"), "query");
  BOOST_CHECK_EQUAL(FieldOf("limit=500&%zz"), "query");
  BOOST_CHECK_EQUAL(FieldOf("mo%zzde=focus"), "query");
}

BOOST_AUTO_TEST_CASE(names_case_sensitive_and_unknown_ignored) {
  auto p = ParseListParams("LIMIT=500&api_key=mk_x&Mode=zzz&limit=3");
  BOOST_REQUIRE(p);
  BOOST_CHECK_EQUAL(p->limit, 3);
  BOOST_CHECK(!p->mode);
}

BOOST_AUTO_TEST_CASE(filters_are_decoded_and_checked) {
  auto p = ParseListParams("mode=deep+focus&engine=a%2Bb&collection_id=mcoll_Ab-9_z");
  BOOST_REQUIRE(p);
  BOOST_CHECK_EQUAL(*p->mode, "deep focus");
  BOOST_CHECK_EQUAL(*p->engine, "a+b");
  BOOST_CHECK_EQUAL(*p->collection_id, "mcoll_Ab-9_z");
  p = ParseListParams("mode=" + std::string(64, 'x') + "&engine=%E2%98%95");
  BOOST_REQUIRE(p);
  BOOST_CHECK_EQUAL(*p->engine, "\xE2\x98\x95");
  BOOST_CHECK_EQUAL(FieldOf("mode=" + std::string(65, 'x')), "mode");
  BOOST_CHECK_EQUAL(FieldOf("engine=%ff"), "engine");
  BOOST_CHECK_EQUAL(FieldOf("engine=%C0%AF"), "engine");     // overlong '/'
  BOOST_CHECK_EQUAL(FieldOf("engine=%ED%A0%80"), "engine");  // surrogate
  BOOST_CHECK_EQUAL(FieldOf("mode=a%0Ab"), "mode");
  BOOST_CHECK_EQUAL(FieldOf("mode=%C2%85"), "mode");  // C1 control
  BOOST_CHECK_EQUAL(FieldOf("mode=%7F"), "mode");
  for (std::string_view c : {"coll_1", "mcoll_", "mcoll_a%20b",
                             "mcoll_"
                             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                             "mcoll_%27", "MCOLL_a"}) {
    BOOST_CHECK_EQUAL(FieldOf("collection_id=" + std::string(c)), "collection_id");
  }
}

BOOST_AUTO_TEST_CASE(caps_on_size) {
  BOOST_CHECK_EQUAL(FieldOf(std::string(5000, 'a')), "query");
  std::string many;
  for (int i = 0; i < 65; ++i) many += "x" + std::to_string(i) + "=1&";
  BOOST_CHECK_EQUAL(FieldOf(many), "query");
}

BOOST_AUTO_TEST_SUITE_END()
