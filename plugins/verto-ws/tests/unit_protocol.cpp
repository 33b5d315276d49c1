// verto-ws codec and credentials: JSON-RPC framing as mod_verto does it, PBKDF2 records,
// channel patterns, the SDP -> jn_media_desc reading.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "credentials.hpp"
#include "jsonrpc.hpp"
#include "media_desc.hpp"

using verto::json;

TEST_CASE("a request keeps the client's id of any JSON type; params default to {}") {
  auto f = verto::parse_frame(R"({"jsonrpc":"2.0","method":"echo","id":{"x":[1]}})");
  REQUIRE(f.messages.size() == 1);
  CHECK(f.messages[0].kind == verto::Message::Request);
  CHECK(f.messages[0].id == json{{"x", {1}}});
  CHECK(f.messages[0].params == json::object());
  auto r = verto::make_result(f.messages[0].id, json{{"a", 1}}, "S1");
  CHECK(r["id"] == json{{"x", {1}}});
  CHECK(r["result"]["sessid"] == "S1");
}

TEST_CASE("responses from the client are told apart from requests") {
  auto f = verto::parse_frame(R"({"jsonrpc":"2.0","id":7,"result":{"method":"verto.invite"}})");
  CHECK(f.messages[0].kind == verto::Message::Response);
  CHECK(f.messages[0].id == 7);
}

TEST_CASE("invalid input is one Invalid message with a reason") {
  for (const char* bad : {"not json", "[]", "5", R"({"jsonrpc":"1.0","method":"x"})", R"({"method":5})", R"({"method":"x","params":[1]})",
                          R"({"jsonrpc":"2.0"})"}) {
    auto f = verto::parse_frame(bad);
    REQUIRE(f.messages.size() == 1);
    CHECK(f.messages[0].kind == verto::Message::Invalid);
    CHECK(!f.messages[0].why.empty());
  }
  std::string deep(100, '[');
  CHECK(verto::parse_frame(deep).messages[0].why.find("deeper") != std::string::npos);
}

TEST_CASE("batches: each element classified; over the limit refused whole") {
  auto f = verto::parse_frame(R"([{"jsonrpc":"2.0","method":"a","id":1},{"bad":1},{"jsonrpc":"2.0","id":2,"result":{}}])");
  CHECK(f.batch);
  REQUIRE(f.messages.size() == 3);
  CHECK(f.messages[0].kind == verto::Message::Request);
  CHECK(f.messages[1].kind == verto::Message::Invalid);
  CHECK(f.messages[2].kind == verto::Message::Response);
  verto::Limits lim;
  lim.max_batch = 2;
  auto g = verto::parse_frame(R"([{"method":"a"},{"method":"b"},{"method":"c"}])", lim);
  CHECK(!g.batch);
  CHECK(g.messages.size() == 1);
  CHECK(g.messages[0].kind == verto::Message::Invalid);
}

TEST_CASE("errors carry mod_verto's codes") {
  auto e = verto::make_error(3, verto::kAuthRequired, "Authentication Required");
  CHECK(e["error"]["code"] == -32000);
  CHECK(e["id"] == 3);
}

TEST_CASE("PBKDF2 records verify the right password only, and are salted") {
  std::string a = verto::password_hash("secret", 1000), b = verto::password_hash("secret", 1000);
  REQUIRE(a.rfind("pbkdf2-sha256$1000$", 0) == 0);
  CHECK(a != b);
  CHECK(verto::password_verify("secret", a));
  CHECK(!verto::password_verify("secreT", a));
  CHECK(!verto::password_verify("secret", "plain"));
  CHECK(!verto::password_verify("secret", "pbkdf2-sha256$0$00$00"));
  CHECK(!verto::password_verify("secret", a.substr(0, a.size() - 2)));
}

TEST_CASE("users, logins, channels") {
  CHECK(verto::valid_user("1001"));
  CHECK(!verto::valid_user("a b"));
  CHECK(!verto::valid_user(""));
  CHECK(verto::user_of_login("1001@example.com") == "1001");
  std::vector<std::string> p = {"FSevent.heartbeat", "chat.*"};
  CHECK(verto::channel_allowed(p, "chat.room1"));
  CHECK(verto::channel_allowed(p, "FSevent.heartbeat"));
  CHECK(!verto::channel_allowed(p, "FSevent.heartbeatx"));
  CHECK(!verto::channel_allowed(p, "admin"));
  CHECK(verto::channel_allowed({"*"}, "anything"));
  CHECK(verto::new_uuid().size() == 36);
}

TEST_CASE("a browser offer reads as streams with codec, mid, ICE and fingerprint") {
  const char* sdp =
      "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\na=fingerprint:sha-256 AB:CD\r\n"
      "m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:uf\r\na=ice-pwd:pw\r\na=setup:actpass\r\na=mid:0\r\n"
      "a=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n"
      "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=recvonly\r\na=rtpmap:96 VP8/90000\r\n";
  verto::MediaDesc md;
  std::string why;
  REQUIRE(md.parse(sdp, why));
  REQUIRE(md.size() == 2);
  const jn_media_stream* a = md.desc()->streams[0];
  CHECK(a->kind == JN_MEDIA_AUDIO);
  CHECK(std::string(a->format.ptr, a->format.len) == "OPUS");
  CHECK(a->clock_rate == 48000);
  CHECK(a->payload_type == 111);
  CHECK(std::string(a->ice_ufrag.ptr, a->ice_ufrag.len) == "uf");
  CHECK(std::string(a->fingerprint.ptr, a->fingerprint.len) == "sha-256 AB:CD");
  CHECK(a->setup == JN_SETUP_ACTPASS);
  CHECK((a->flags & JN_MS_RTCP_MUX) != 0);
  const jn_media_stream* v = md.desc()->streams[1];
  CHECK(v->direction == JN_DIR_RECVONLY);
  CHECK(std::string(v->format.ptr, v->format.len) == "VP8");
  verto::MediaDesc bad;
  CHECK(!bad.parse("hello", why));
}
