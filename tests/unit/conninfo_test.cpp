// Multi-host connection strings: rotation keeps each host with its port, options are applied.
#include <boost/test/unit_test.hpp>
#include <stdexcept>
#include <string>

#include "db/conninfo.hpp"

using music_api::ConnectionOptions;
using music_api::HostList;

namespace {
bool Has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }
}  // namespace

BOOST_AUTO_TEST_SUITE(conninfo)

BOOST_AUTO_TEST_CASE(hosts_rotate_with_their_ports) {
  HostList hosts("host=a,b,c port=5432,5433,5434 dbname=music user=music_api target_session_attrs=prefer-standby",
                 ConnectionOptions{});
  BOOST_CHECK_EQUAL(hosts.size(), 3);
  std::string second = hosts.StartingAt(1);
  BOOST_CHECK(Has(second, "host='b,c,a'"));
  BOOST_CHECK(Has(second, "port='5433,5434,5432'"));
  BOOST_CHECK(Has(second, "target_session_attrs='prefer-standby'"));
  BOOST_CHECK(Has(hosts.StartingAt(4), "host='b,c,a'"));   // modulo the host count
  BOOST_CHECK(Has(hosts.StartingAt(-1), "host='c,a,b'"));  // never negative
  BOOST_CHECK_EQUAL(hosts.IndexOf("c", "5434"), 2);
  BOOST_CHECK_EQUAL(hosts.IndexOf("c", "5432"), -1);
  BOOST_CHECK_EQUAL(hosts.IndexOf("d", "5432"), -1);
}

BOOST_AUTO_TEST_CASE(one_port_applies_to_every_host) {
  HostList hosts("host=a,b port=6000 dbname=m", ConnectionOptions{});
  std::string s = hosts.StartingAt(1);
  BOOST_CHECK(Has(s, "host='b,a'"));
  BOOST_CHECK(Has(s, "port='6000'"));
  BOOST_CHECK_EQUAL(hosts.IndexOf("a", "6000"), 0);
}

BOOST_AUTO_TEST_CASE(a_single_host_string_keeps_working) {
  HostList hosts("dbname=music user=music_api", ConnectionOptions{});
  BOOST_CHECK_EQUAL(hosts.size(), 1);
  std::string s = hosts.StartingAt(7);
  BOOST_CHECK(Has(s, "dbname='music'"));
  BOOST_CHECK(Has(s, "user='music_api'"));
  BOOST_CHECK(!Has(s, "host="));
}

BOOST_AUTO_TEST_CASE(uris_and_quoting_go_through_libpq) {
  HostList hosts("postgresql://u@h1:5432,h2:5433/music?target_session_attrs=read-write&connect_timeout=30",
                 ConnectionOptions{});
  BOOST_CHECK_EQUAL(hosts.size(), 2);
  std::string s = hosts.StartingAt(1);
  BOOST_CHECK(Has(s, "host='h2,h1'"));
  BOOST_CHECK(Has(s, "port='5433,5432'"));
  BOOST_CHECK(Has(s, "dbname='music'"));
  // A password with a quote and a backslash survives the round trip.
  HostList quoted(R"(host=a password='it\'s\\x' dbname=m)", ConnectionOptions{});
  BOOST_CHECK(Has(quoted.StartingAt(0), R"(password='it\'s\\x')"));
}

BOOST_AUTO_TEST_CASE(configured_timeouts_win_over_the_string) {
  ConnectionOptions options{3, 7, 4, 5, 6000};
  std::string s = HostList("host=a connect_timeout=60 keepalives_idle=600 dbname=m", options).StartingAt(0);
  BOOST_CHECK(Has(s, "connect_timeout='3'"));
  BOOST_CHECK(!Has(s, "connect_timeout='60'"));
  BOOST_CHECK(Has(s, "keepalives='1'"));
  BOOST_CHECK(Has(s, "keepalives_idle='7'"));
  BOOST_CHECK(!Has(s, "keepalives_idle='600'"));
  BOOST_CHECK(Has(s, "keepalives_interval='4'"));
  BOOST_CHECK(Has(s, "keepalives_count='5'"));
  BOOST_CHECK(Has(s, "tcp_user_timeout='6000'"));
}

BOOST_AUTO_TEST_CASE(the_write_session_always_asks_for_the_primary) {
  // Whatever the string says (here the read string's prefer-standby), the listener and the
  // write session connect only to a server that accepts writes.
  std::string s = HostList("host=a,b target_session_attrs=prefer-standby dbname=m", ConnectionOptions{},
                           /*primary_only=*/true)
                      .StartingAt(0);
  BOOST_CHECK(Has(s, "target_session_attrs='read-write'"));
  BOOST_CHECK(!Has(s, "prefer-standby"));
  BOOST_CHECK(Has(HostList("dbname=m", ConnectionOptions{}, true).StartingAt(0), "target_session_attrs='read-write'"));
  BOOST_CHECK(!Has(HostList("dbname=m", ConnectionOptions{}).StartingAt(0), "target_session_attrs"));
}

BOOST_AUTO_TEST_CASE(a_broken_string_is_libpqs_error) {
  BOOST_CHECK_THROW(HostList("host=a dbname='unterminated", ConnectionOptions{}), std::invalid_argument);
  BOOST_CHECK_THROW(HostList("no_such_option=1", ConnectionOptions{}), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()
