// verto-ws codec and credentials: JSON-RPC framing as mod_verto does it, PBKDF2 records,
// channel patterns, the SDP -> jn_media_desc reading.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "conference.hpp"
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

// --- conferences: the LiveArray codec and the conference channels' input ------------------------
namespace la = verto::ws::la;

static verto::ws::ConfRoom room_of_two() {
  verto::ws::ConfRoom r;
  r.name = "3000-seven.local";
  r.domain = "seven.local";
  for (uint32_t id : {2u, 77u}) {
    verto::ws::ConfMember m;
    m.id = id;
    m.key = "call-" + std::to_string(id);
    m.cid_number = "100" + std::to_string(id);
    m.cid_name = "Name" + std::to_string(id);
    m.codec = "opus@48000";
    m.moderator = id == 77;
    r.members[id] = m;
    r.order.push_back(id);
  }
  r.floor = 77;
  return r;
}

TEST_CASE("LiveArray: bootObj members as the document's arrays, status a JSON string") {
  auto r = room_of_two();
  json b = la::boot_obj(r);
  CHECK(b["action"] == "bootObj");
  CHECK(b["wireSerno"] == -1);
  CHECK(b["name"] == "3000-seven.local");
  REQUIRE(b["data"].size() == 2);
  CHECK(b["data"][1][0] == "call-77");
  json m = b["data"][1][1];
  CHECK(m[0] == "0077");
  CHECK(m[3] == "opus@48000");
  json st = json::parse(m[4].get<std::string>());
  CHECK(st["audio"]["floor"] == true);
  CHECK(st["isModerator"] == true);
  CHECK(st["oldStatus"] == "FLOOR");
  CHECK(st["video"] == false);
  CHECK(m[5] == json::object());
  CHECK(m[6].is_null());
  // cman's object form: the same member with node_uuid
  json o = la::boot_obj_objects(r, "node-1")["data"][0][1];
  CHECK(o["memberID"] == "2");
  CHECK(o["node_uuid"] == "node-1");
  CHECK(o["status"]["audio"]["floor"] == false);
  CHECK(o["uuid"] == "call-2");
}

TEST_CASE("LiveArray: add carries arrIndex, modify/del carry hashKey and the serial") {
  auto r = room_of_two();
  json add = la::change(r, r.members[77], "add", 5);
  CHECK(add["arrIndex"] == 1);
  CHECK(add["hashKey"] == "call-77");
  CHECK(add["wireSerno"] == 5);
  json mod = la::change(r, r.members[2], "modify", 6);
  CHECK_FALSE(mod.contains("arrIndex"));
  CHECK(mod["wireSerno"] == 6);
}

TEST_CASE("pvtData: the modChannel for moderators only") {
  auto r = room_of_two();
  json p = la::pvt_data(r, "cid", 77, true, true);
  CHECK(p["action"] == "conference-liveArray-join");
  CHECK(p["laChannel"] == "conference-liveArray.3000-seven.local@seven.local");
  CHECK(p["chatID"] == "conf+3000-seven.local@seven.local");
  CHECK(p["modChannel"] == "conference-mod.3000-seven.local@seven.local");
  CHECK(p["conferenceMemberID"] == "77");
  json q = la::pvt_data(r, "cid", 2, false, false);
  CHECK(q["action"] == "conference-liveArray-part");
  CHECK(q["role"] == "participant");
  CHECK_FALSE(q.contains("modChannel"));
}

TEST_CASE("room names and conference channels") {
  std::string n, d, kind;
  CHECK(la::room_name("3000", "seven.local", n, d));
  CHECK(n == "3000-seven.local");
  CHECK(la::room_name("3000-seven.local", "seven.local", n, d));
  CHECK(n == "3000-seven.local");
  CHECK_FALSE(la::room_name("a b", "seven.local", n, d));
  CHECK_FALSE(la::room_name("3000", "", n, d));
  CHECK_FALSE(la::room_name(std::string(49, 'x'), "seven.local", n, d));
  CHECK(la::parse_channel("conference-mod.3000-seven.local@seven.local", kind, n, d));
  CHECK((kind == "mod" && n == "3000-seven.local" && d == "seven.local"));
  CHECK_FALSE(la::parse_channel("conference-mod.3000-seven.local", kind, n, d));
  CHECK_FALSE(la::parse_channel("conference-other.3000@x", kind, n, d));
  CHECK_FALSE(la::parse_channel("chat.room", kind, n, d));
}

TEST_CASE("conference channel input: bootstrap, conf-control, chat; anything else refused with a reason") {
  CHECK(la::parse_command("liveArray", json::parse(R"({"liveArray":{"command":"bootstrap"}})")).kind == la::Command::Bootstrap);
  CHECK(la::parse_command("liveArray", json::parse(R"({"liveArray":{"command":"drop"}})")).kind == la::Command::Invalid);
  auto c = la::parse_command("mod", json::parse(R"({"application":"conf-control","command":"mute","id":"0077"})"));
  CHECK(c.kind == la::Command::Mod);
  CHECK(c.member == 77);
  CHECK(la::parse_command("mod", json::parse(R"({"command":"kick","id":2})")).member == 2);
  CHECK(la::parse_command("mod", json::parse(R"({"command":"lock"})")).kind == la::Command::Mod);
  auto bad = la::parse_command("mod", json::parse(R"({"command":"mute"})"));
  CHECK(bad.kind == la::Command::Invalid);
  CHECK(bad.why == "mute needs a member id");
  CHECK(la::parse_command("mod", json::parse(R"({"command":"explode","id":1})")).kind == la::Command::Invalid);
  CHECK(la::parse_command("mod", json::parse(R"({"command":"mute","id":"12x"})")).kind == la::Command::Invalid);
  CHECK(la::parse_command("mod", json::parse(R"({"command":"mute","id":-3})")).kind == la::Command::Invalid);
  CHECK(la::parse_command("chat", json::parse(R"({"action":"send","message":"hi"})")).message == "hi");
  CHECK(la::parse_command("chat", json::parse(R"({"message":""})")).kind == la::Command::Invalid);
  CHECK(la::parse_command("info", json::object()).kind == la::Command::Invalid);
  CHECK(la::parse_command("mod", json("text")).kind == la::Command::Invalid);
}
