#include "common/address.h"

#include <catch2/catch.hpp>

namespace weft::common {
namespace {

TEST_CASE("HOST:PORT flag values parse; bad ones give a reason", "[address]") {
  auto a = ParseHostPort("127.0.0.1:15014");
  REQUIRE(a.ok());
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 15014);
  auto v6 = ParseHostPort("[::1]:0");
  REQUIRE(v6.ok());
  CHECK(v6->host == "::1");
  CHECK_FALSE(ParseHostPort("localhost").ok());
  CHECK_FALSE(ParseHostPort(":80").ok());
  CHECK_FALSE(ParseHostPort("host:99999").ok());
  CHECK_FALSE(ParseHostPort("host:http").ok());
}

TEST_CASE("only loopback addresses count as loopback", "[address]") {
  CHECK(IsLoopback("127.0.0.1"));
  CHECK(IsLoopback("127.1.2.3"));
  CHECK(IsLoopback("::1"));
  CHECK(IsLoopback("localhost"));
  CHECK_FALSE(IsLoopback("0.0.0.0"));
  CHECK_FALSE(IsLoopback("10.0.0.1"));
}

}  // namespace
}  // namespace weft::common
