#include "cli/admin_client.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <thread>

namespace weft::cli {
namespace {

TEST_CASE("admin addresses: HOST:PORT, [V6]:PORT, an http:// prefix; bad ones say why", "[cli]") {
  auto a = ParseAdminAddress("127.0.0.1:15014");
  REQUIRE(a.ok());
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 15014);
  auto v6 = ParseAdminAddress("[::1]:9");
  REQUIRE(v6.ok());
  CHECK(v6->host == "::1");
  CHECK(v6->port == 9);
  auto url = ParseAdminAddress("http://weftd.weft-system.svc:15014/");
  REQUIRE(url.ok());
  CHECK(url->host == "weftd.weft-system.svc");
  CHECK_FALSE(ParseAdminAddress("localhost").ok());
  CHECK_FALSE(ParseAdminAddress(":15014").ok());
  CHECK_FALSE(ParseAdminAddress("host:0").ok());
  CHECK_FALSE(ParseAdminAddress("host:70000").ok());
  CHECK(std::string(ParseAdminAddress("host:http").status().message()).find("host:http") !=
        std::string::npos);
}

TEST_CASE("GET sends the bearer token and returns any HTTP status as an answer", "[cli]") {
  httplib::Server server;
  server.Get("/api/v1/proxies", [](const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("Authorization") != "Bearer s3cret") {
      res.status = 401;
      res.set_content(R"({"error": "a valid bearer token is required"})", "application/json");
      return;
    }
    res.set_content(R"({"proxies": []})", "application/json");
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  REQUIRE(port > 0);
  std::thread serving([&] { server.listen_after_bind(); });

  auto ok = AdminClient({"127.0.0.1", port}, "s3cret", absl::Seconds(5)).Get("/api/v1/proxies");
  auto no_token = AdminClient({"127.0.0.1", port}, "", absl::Seconds(5)).Get("/api/v1/proxies");
  auto missing = AdminClient({"127.0.0.1", port}, "s3cret", absl::Seconds(5)).Get("/nope");
  server.stop();
  serving.join();

  REQUIRE(ok.ok());
  CHECK(ok->status == 200);
  CHECK(ok->body == R"({"proxies": []})");
  REQUIRE(no_token.ok());
  CHECK(no_token->status == 401);
  REQUIRE(missing.ok());
  CHECK(missing->status == 404);
}

TEST_CASE("an unreachable address is Unavailable and named", "[cli]") {
  // A port that was free a moment ago and has no listener: connecting is refused.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  const int port = ntohs(addr.sin_port);
  close(fd);
  AdminClient client({"127.0.0.1", port}, "", absl::Seconds(2));
  auto response = client.Get("/healthz");
  REQUIRE_FALSE(response.ok());
  CHECK(response.status().code() == absl::StatusCode::kUnavailable);
  CHECK(std::string(response.status().message()).find("127.0.0.1:" + std::to_string(port)) !=
        std::string::npos);
  CHECK(client.AddressText() == "127.0.0.1:" + std::to_string(port));
  CHECK(AdminClient({"::1", 15014}, "", absl::Seconds(1)).AddressText() == "[::1]:15014");
}

}  // namespace
}  // namespace weft::cli
