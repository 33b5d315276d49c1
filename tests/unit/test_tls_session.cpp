// TlsSession (core/src/net/tls_session.*): two sessions wired back to back, no sockets. A client
// that trusts the CA completes the handshake and exchanges data both ways (plaintext written
// before the handshake is held, then sent); the wrong CA or the wrong name is a failure with the
// reason; garbage from the peer is a failure, never a crash.
#include "net/tls_session.hpp"

#include <doctest/doctest.h>

#include "../lib/http_test_server.hpp"

#include <string>

using junction::TlsSession;

namespace {
// Moves bytes between the two sessions until neither has anything to send.
struct Pair {
  Pair(TlsSession& c, TlsSession& s) : client(c), server(s) {}
  TlsSession& client;
  TlsSession& server;
  std::string at_client, at_server;  // plaintext each side received
  TlsSession::Status client_status = TlsSession::Status::kOk, server_status = TlsSession::Status::kOk;
  bool client_connected = false, server_connected = false;
  void pump() {
    for (int round = 0; round < 20; ++round) {
      std::string c2s, s2c;
      client.take_output(c2s);
      server.take_output(s2c);
      if (c2s.empty() && s2c.empty()) return;
      if (!c2s.empty()) {
        server_status = server.feed(c2s.data(), c2s.size(), [&](const char* p, size_t n) { at_server.append(p, n); return true; });
        server_connected |= server_status == TlsSession::Status::kConnected;
      }
      if (!s2c.empty()) {
        client_status = client.feed(s2c.data(), s2c.size(), [&](const char* p, size_t n) { at_client.append(p, n); return true; });
        client_connected |= client_status == TlsSession::Status::kConnected;
      }
    }
  }
};
}  // namespace

TEST_CASE("TLS session: handshake over memory, data both ways, early writes held") {
  jntest::TestPki pki;
  SSL_CTX* sctx = pki.server_ctx("IP:127.0.0.1,DNS:sip.test");
  std::string err;
  SSL_CTX* cctx = TlsSession::client_context(pki.ca_file(), &err);
  REQUIRE_MESSAGE(cctx, err);
  for (const char* name : {"127.0.0.1", "sip.test"}) {
    TlsSession client(cctx, TlsSession::Role::kClient, name), server(sctx, TlsSession::Role::kServer, "");
    REQUIRE(server.start(&err));
    REQUIRE_MESSAGE(client.start(&err), err);
    CHECK(client.write("early"));  // before the handshake: held
    Pair p(client, server);
    p.pump();
    CHECK(p.client_connected);
    CHECK(p.server_connected);
    CHECK(client.connected());
    CHECK(p.at_server == "early");
    CHECK(server.write(std::string(40000, 'x')));  // several records
    p.pump();
    CHECK(p.at_client == std::string(40000, 'x'));
  }
  SSL_CTX_free(cctx);
  SSL_CTX_free(sctx);
}

TEST_CASE("TLS session: an untrusted CA or a wrong name fails with the reason") {
  jntest::TestPki pki, other("another CA");
  SSL_CTX* sctx = pki.server_ctx("IP:127.0.0.1");
  std::string err;
  SSL_CTX* wrong_ca = TlsSession::client_context(other.ca_file(), &err);
  SSL_CTX* right_ca = TlsSession::client_context(pki.ca_file(), &err);
  REQUIRE(wrong_ca);
  REQUIRE(right_ca);
  struct Case {
    SSL_CTX* ctx;
    const char* name;
  };
  for (Case c : {Case{wrong_ca, "127.0.0.1"}, Case{right_ca, "127.0.0.2"}, Case{right_ca, "other.test"}}) {
    TlsSession client(c.ctx, TlsSession::Role::kClient, c.name), server(sctx, TlsSession::Role::kServer, "");
    REQUIRE(server.start(&err));
    REQUIRE(client.start(&err));
    Pair p(client, server);
    p.pump();
    CHECK_FALSE(client.connected());
    CHECK(p.client_status == TlsSession::Status::kError);
    CHECK(client.error().find("certificate verification failed") != std::string::npos);
    CHECK_FALSE(client.write("x"));  // a failed session stays failed
  }
  SSL_CTX_free(wrong_ca);
  SSL_CTX_free(right_ca);
  SSL_CTX_free(sctx);
}

TEST_CASE("TLS session: plaintext or garbage from the peer is an error, not a crash") {
  jntest::TestPki pki;
  SSL_CTX* sctx = pki.server_ctx("IP:127.0.0.1");
  std::string err;
  TlsSession server(sctx, TlsSession::Role::kServer, "");
  REQUIRE(server.start(&err));
  std::string plain = "REGISTER sip:a SIP/2.0\r\n\r\n";
  auto st = server.feed(plain.data(), plain.size(), [](const char*, size_t) { return true; });
  CHECK(st == TlsSession::Status::kError);
  CHECK(server.error().find("handshake failed") != std::string::npos);
  std::string missing;
  CHECK(TlsSession::server_context("/nonexistent.pem", "/nonexistent.key", &missing) == nullptr);
  CHECK(missing.find("/nonexistent.pem") != std::string::npos);
  SSL_CTX_free(sctx);
}
