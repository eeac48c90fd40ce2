// TlsStream (proxy/byte_stream.h): mutual TLS between two streams over real
// loopback sockets with certificates from Weft's own CA code: the handshake
// checks the peer's SPIFFE ID, bulk data crosses in both directions while
// the socket buffers fill (OpenSSL's retries wait for readiness), a peer that
// closes without close_notify reads as a truncated stream (what the proxy
// checks for), and a closed stream fails instead of touching its old socket.
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "ca/authority_factory.h"
#include "ca/x509.h"
#include "proxy/byte_stream.h"
#include "tests/ca/test_ca.h"

namespace weft::proxy {
namespace {

using asio::awaitable;

constexpr char kClientId[] = "spiffe://cluster.local/ns/bench/sa/a";
constexpr char kServerId[] = "spiffe://cluster.local/ns/bench/sa/b";

struct Mesh {
  ca::SigningAuthorityConstSharedPtr authority;
  std::string roots_pem;

  Mesh() {
    auto a = ca::CreateAuthority("cluster.local", std::chrono::hours(1), std::chrono::system_clock::now());
    REQUIRE(a.ok());
    authority = *a;
    roots_pem = ca::CertificateToPem(authority->root.get());
  }

  TlsContextsConstSharedPtr Contexts(const std::string& spiffe_id) const {
    ca::testing::IssuedWorkload issued =
        ca::testing::IssueWorkload(*authority, spiffe_id, std::chrono::system_clock::now());
    WorkloadIdentity identity;
    identity.spiffe_id = spiffe_id;
    identity.key = std::move(issued.key);
    identity.chain = std::move(issued.chain);
    auto tls = TlsContexts::Build(identity, roots_pem);
    REQUIRE(tls.ok());
    return *tls;
  }
};

struct Pair {
  asio::io_context io;
  std::unique_ptr<TlsStream> client, server;

  Pair(const Mesh& mesh) {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    tcp::socket c(io);
    c.connect(acceptor.local_endpoint());
    client = std::make_unique<TlsStream>(std::move(c), mesh.Contexts(kClientId), false);
    server = std::make_unique<TlsStream>(acceptor.accept(), mesh.Contexts(kServerId), true);
  }

  // Both handshakes, the client expecting `expected`; the client's error.
  std::string Handshake(const std::vector<std::string>& expected, std::error_code& client_ec) {
    std::string client_error, server_error;
    std::error_code server_ec;
    // Handshake() keeps its reference arguments until it completes.
    const std::string sni = "b.bench", no_sni;
    const std::vector<std::string> any;
    asio::co_spawn(io, client->Handshake(sni, expected, client_ec, client_error), asio::detached);
    asio::co_spawn(io, server->Handshake(no_sni, any, server_ec, server_error), asio::detached);
    io.run_for(std::chrono::seconds(30));
    io.restart();
    return client_error;
  }
};

std::string Pattern(size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 1000) % 26);
  return s;
}

awaitable<void> ReadAll(ByteStream& stream, size_t want, std::string& out, std::error_code& ec) {
  char buf[4096];
  while (out.size() < want) {
    size_t n = co_await stream.ReadSome(asio::buffer(buf), ec);
    if (ec) co_return;
    out.append(buf, n);
  }
}

TEST_CASE("TLS streams: mutual handshake with SPIFFE IDs, bulk data both ways", "[proxy][stream][tls]") {
  Mesh mesh;
  Pair p(mesh);
  std::error_code ec;
  CHECK(p.Handshake({kServerId}, ec).empty());
  REQUIRE(!ec);
  CHECK(p.client->peer_principal() == kServerId);
  CHECK(p.server->peer_principal() == kClientId);

  // Far more than both socket buffers hold: the writer waits for the reader.
  const std::string up = Pattern(8 << 20), down_body = Pattern(100000);
  std::string got_up, got_down;
  std::error_code write_ec, read_ec, write2_ec, read2_ec;
  asio::co_spawn(p.io, p.client->Write(up, write_ec), asio::detached);
  asio::co_spawn(p.io, ReadAll(*p.server, up.size(), got_up, read_ec), asio::detached);
  asio::co_spawn(p.io, p.server->Write2("HTTP/1.1 200 OK\r\n\r\n", down_body, write2_ec), asio::detached);
  asio::co_spawn(p.io, ReadAll(*p.client, 19 + down_body.size(), got_down, read2_ec), asio::detached);
  p.io.run_for(std::chrono::seconds(60));
  p.io.restart();
  CHECK(!write_ec);
  CHECK(!read_ec);
  CHECK(!write2_ec);
  CHECK(!read2_ec);
  CHECK(got_up.size() == up.size());
  CHECK(got_up == up);
  CHECK(got_down == "HTTP/1.1 200 OK\r\n\r\n" + down_body);

  // A small head and body go out together and arrive intact.
  got_down.clear();
  asio::co_spawn(p.io, p.server->Write2("head;", "body", write2_ec), asio::detached);
  asio::co_spawn(p.io, ReadAll(*p.client, 9, got_down, read2_ec), asio::detached);
  p.io.run_for(std::chrono::seconds(30));
  p.io.restart();
  CHECK(got_down == "head;body");

  // Closed without close_notify: the reader sees a truncated stream.
  p.client->Close();
  std::string rest;
  asio::co_spawn(p.io, ReadAll(*p.server, 1, rest, read_ec), asio::detached);
  p.io.run_for(std::chrono::seconds(30));
  p.io.restart();
  CHECK(read_ec == asio::ssl::error::stream_truncated);

  // A closed stream fails at once rather than using a descriptor number
  // that may belong to another connection by now.
  asio::co_spawn(p.io, p.client->Write("late", write_ec), asio::detached);
  p.io.run_for(std::chrono::seconds(30));
  CHECK(write_ec == asio::error::bad_descriptor);
}

awaitable<void> HalfClose(ByteStream& client, ByteStream& server, std::string& server_got,
                          std::error_code& server_end, std::string& client_got, std::error_code& client_end) {
  std::error_code ec;
  co_await client.Write("request", ec);
  co_await client.ShutdownWrite(ec);
  char buf[256];
  while (!server_end) {
    size_t n = co_await server.ReadSome(asio::buffer(buf), server_end);
    server_got.append(buf, n);
  }
  co_await server.Write("reply after the client's close_notify", ec);
  co_await server.ShutdownWrite(ec);
  while (!client_end) {
    size_t n = co_await client.ReadSome(asio::buffer(buf), client_end);
    client_got.append(buf, n);
  }
}

TEST_CASE("TLS streams: a half-close sends close_notify and the other direction keeps flowing",
          "[proxy][stream][tls]") {
  Mesh mesh;
  Pair p(mesh);
  std::error_code ec;
  CHECK(p.Handshake({kServerId}, ec).empty());
  REQUIRE(!ec);
  std::string server_got, client_got;
  std::error_code server_end, client_end;
  asio::co_spawn(p.io, HalfClose(*p.client, *p.server, server_got, server_end, client_got, client_end),
                 asio::detached);
  p.io.run_for(std::chrono::seconds(30));
  CHECK(server_got == "request");
  CHECK(server_end == asio::error::eof);  // close_notify: a clean end, not a truncation
  CHECK(client_got == "reply after the client's close_notify");
  CHECK(client_end == asio::error::eof);
}

TEST_CASE("TLS streams: the client refuses a peer with another SPIFFE ID", "[proxy][stream][tls]") {
  Mesh mesh;
  Pair p(mesh);
  std::error_code ec;
  std::string error = p.Handshake({"spiffe://cluster.local/ns/bench/sa/other"}, ec);
  CHECK(ec == asio::error::access_denied);
  CHECK(error.find("spiffe://cluster.local/ns/bench/sa/b is not one of") != std::string::npos);
}

TEST_CASE("TLS streams: a server certificate from another CA fails verification", "[proxy][stream][tls]") {
  Mesh mesh, other;
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket c(io);
  c.connect(acceptor.local_endpoint());
  TlsStream client(std::move(c), mesh.Contexts(kClientId), false);
  TlsStream server(acceptor.accept(), other.Contexts(kServerId), true);
  std::error_code client_ec, server_ec;
  std::string client_error, server_error;
  const std::string sni = "b.bench", no_sni;
  const std::vector<std::string> expected = {kServerId}, any;
  asio::co_spawn(io, client.Handshake(sni, expected, client_ec, client_error), asio::detached);
  asio::co_spawn(io, server.Handshake(no_sni, any, server_ec, server_error), asio::detached);
  io.run_for(std::chrono::seconds(30));
  CHECK(client_ec);
  CHECK(client_error.find("certificate verification failed") != std::string::npos);
  CHECK(server_ec);
}

}  // namespace
}  // namespace weft::proxy
