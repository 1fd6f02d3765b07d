// The JSON bodies and headers, byte for byte.
#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include "core/config.hpp"
#include "core/text.hpp"
#include "core/time.hpp"
#include "http/render.hpp"
#include "http/response.hpp"

using namespace music_api;

BOOST_AUTO_TEST_SUITE(render)

BOOST_AUTO_TEST_CASE(page_in_spec_order_with_nulls) {
  TrackPage page;
  page.Resize(2);
  page.id = {"mtrack_b", "mtrack_a"};
  page.title = {"Caf\xC3\xA9 \"\xE2\x98\x95\"\n", ""};
  page.title_null = {0, 1};
  page.engine = {"studio", "lyra"};
  page.mode = {"creation", "focus"};
  page.duration = {119.4, 0};
  page.duration_null = {0, 1};
  page.instrumental = {1, 0};
  page.licence_class = {"personal_only", "unclear"};
  page.created_at = {1782642660, -1};
  std::string out;
  RenderTrackPage(page, 20, 40, out);
  BOOST_CHECK_EQUAL(out,
                    R"({"items":[{"id":"mtrack_b","title":"Café \"☕\"\n","engine":"studio","mode":"creation",)"
                    R"("measured_duration_seconds":119.4,"instrumental":true,"licence_class":"personal_only",)"
                    R"("created_at":"2026-06-28T10:31:00Z","playback_url":null,"stem_urls":null},)"
                    R"({"id":"mtrack_a","title":null,"engine":"lyra","mode":"focus","measured_duration_seconds":null,)"
                    R"("instrumental":false,"licence_class":"unclear","created_at":"1969-12-31T23:59:59Z",)"
                    R"("playback_url":null,"stem_urls":null}],"limit":20,"offset":40})");
  BOOST_CHECK_NO_THROW(boost::json::parse(out));
}

BOOST_AUTO_TEST_CASE(empty_page) {
  TrackPage page;
  std::string out;
  RenderTrackPage(page, 50, 0, out);
  BOOST_CHECK_EQUAL(out, R"({"items":[],"limit":50,"offset":0})");
}

BOOST_AUTO_TEST_CASE(error_envelope_has_every_field) {
  Response response;
  SetError(response, ApiError::Validation("limit", "limit must be an integer from 1 to 100"), "req_abc", 2);
  auto body = boost::json::parse(response.body).as_object();
  BOOST_CHECK_EQUAL(body.at("success").as_bool(), false);
  auto& e = body.at("error").as_object();
  BOOST_CHECK_EQUAL(e.size(), 8u);  // code, message, system_message, type, status, details, trace_id, timestamp
  BOOST_CHECK_EQUAL(e.at("code").as_string(), "VALIDATION_ERROR");
  BOOST_CHECK_EQUAL(e.at("type").as_string(), "validation_error");
  BOOST_CHECK_EQUAL(e.at("status").as_int64(), 422);
  BOOST_CHECK_EQUAL(e.at("details").as_object().at("field").as_string(), "limit");
  BOOST_CHECK_EQUAL(e.at("trace_id").as_string(), "req_abc");
  BOOST_CHECK_EQUAL(response.status, 422);
  BOOST_CHECK_EQUAL(response.retry_after_seconds, 0);

  SetError(response, ApiError::Of(ErrorCode::kServiceUnavailable), "req_x", 2);
  BOOST_CHECK_EQUAL(response.retry_after_seconds, 2);
  std::string head;
  AppendCgiHeaders(response, "req_x", head);
  BOOST_CHECK(head.starts_with("Status: 503 Service Unavailable\r\n"));
  BOOST_CHECK(head.find("\r\nRetry-After: 2\r\n") != std::string::npos);
  BOOST_CHECK(head.find("Content-Type: application/json; charset=utf-8\r\n") != std::string::npos);
  BOOST_CHECK(head.find("Cache-Control: private, no-store\r\n") != std::string::npos);
  BOOST_CHECK(head.ends_with("\r\n\r\n"));
}

BOOST_AUTO_TEST_CASE(every_code_renders_with_its_status) {
  for (int c = 0; c <= static_cast<int>(ErrorCode::kServiceUnavailable); ++c) {
    Response response;
    ApiError error = ApiError::Of(static_cast<ErrorCode>(c));
    if (error.code == ErrorCode::kMethodNotAllowed) error.allow = "GET, HEAD";  // the router sets it
    SetError(response, error, "req_1", 1);
    auto e = boost::json::parse(response.body).at("error");
    BOOST_CHECK_EQUAL(e.at("status").as_int64(), response.status);
    BOOST_CHECK(!e.at("message").as_string().empty());
    BOOST_CHECK(e.at("details").as_object().empty());
    std::string head;
    AppendCgiHeaders(response, "req_1", head);
    BOOST_CHECK_EQUAL(head.find("Allow: GET, HEAD") != std::string::npos, response.status == 405);
  }
}

BOOST_AUTO_TEST_CASE(timestamps_are_utc_z) {
  BOOST_CHECK_EQUAL(FormatUtc(0), "1970-01-01T00:00:00Z");
  BOOST_CHECK_EQUAL(NowUtc().size(), 20u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(text)

BOOST_AUTO_TEST_CASE(utf8_and_percent_decoding) {
  BOOST_CHECK(IsValidUtf8("plain \xF0\x9F\x8E\xB5"));
  BOOST_CHECK(!IsValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  BOOST_CHECK(!IsValidUtf8("\xE2\x98"));          // truncated
  BOOST_CHECK_EQUAL(*PercentDecode("a+b%20c%2b"), "a b c+");
  BOOST_CHECK(!PercentDecode("%"));
  BOOST_CHECK(!PercentDecode("ab%2"));
  BOOST_CHECK(!PercentDecode("%g0"));
}

BOOST_AUTO_TEST_SUITE_END()
