// sdk/rtmp Publisher against a test server written from the RTMP spec: the server side reads the
// publisher's output with a ChunkReader (in random splits) and answers in random splits; checks
// the handshake, the command sequence (connect / releaseStream / FCPublish / createStream /
// publish), onMetaData, AVC/AAC sequence headers, NALU and audio tags with rebased timestamps and
// composition times, extended timestamps, acknowledgements, ping, backlog drops with keyframe
// wait, refusals (_error, onStatus error), protocol errors, close and unpublish, URL parsing.
#include <limits>
#include <doctest/doctest.h>

#include "rtmp_test_util.hpp"

#include <junction/rtmp/amf0.hpp>
#include <junction/rtmp/publisher.hpp>

#include <memory>
#include <random>
#include <string>
#include <vector>

using namespace junction::rtmp;
using junction::media::FrameView;
using rtmp_test::OwnedMessage;

namespace {

const std::vector<uint8_t> kSps = {0x67, 0x42, 0xC0, 0x1E, 0xD9, 0x01, 0x41, 0xFB, 0x01, 0x10, 0x00,
                                   0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xC0, 0xF1, 0x62, 0xE4, 0x80};
const std::vector<uint8_t> kPps = {0x68, 0xCB, 0x83, 0xCB, 0x20};

std::vector<uint8_t> keyframe_au(size_t slice_len = 300) {
  std::vector<uint8_t> au = {0, 0, 0, 1};
  au.insert(au.end(), kSps.begin(), kSps.end());
  au.insert(au.end(), {0, 0, 0, 1});
  au.insert(au.end(), kPps.begin(), kPps.end());
  au.insert(au.end(), {0, 0, 0, 1, 0x65});
  for (size_t i = 0; i < slice_len; ++i) au.push_back(static_cast<uint8_t>(0x80 | (i & 0x7F)));
  return au;
}

std::vector<uint8_t> p_au(size_t slice_len = 100) {
  std::vector<uint8_t> au = {0, 0, 0, 1, 0x41};
  for (size_t i = 0; i < slice_len; ++i) au.push_back(static_cast<uint8_t>(0x81 + (i & 0x3F)));
  return au;
}

FrameView video(const std::vector<uint8_t>& au, bool key) {
  FrameView f{au.data(), au.size(), {}};
  f.meta.codec = JN_CODEC_H264;
  f.meta.clock_rate = 90000;
  f.meta.frame_flags = key ? (JN_MF_KEY | JN_MF_CONFIG) : 0;
  return f;
}

FrameView audio(const std::vector<uint8_t>& data, uint32_t codec = JN_CODEC_PCMA, uint32_t flags = 0) {
  FrameView f{data.data(), data.size(), {}};
  f.meta.codec = codec;
  f.meta.clock_rate = 8000;
  f.meta.frame_flags = flags;
  f.meta.track = 1;
  return f;
}

struct Command {
  std::string name;
  double txn = 0;
  uint32_t stream_id = 0;
  std::vector<junction::rtmp::amf0::Value> args;
};

// The server end: collects what the publisher sends, reads it as a server would, and answers.
struct Server final : PublisherCallbacks {
  std::mt19937 rng{1234};
  std::vector<uint8_t> raw;  // everything the publisher sent
  size_t fed = 0;            // bytes of raw given to the reader
  ChunkReader reader;
  rtmp_test::Collector got;
  std::vector<std::pair<PublisherStatus, std::string>> statuses;
  ChunkWriter writer;  // the server's chunk size
  size_t max_piece = 700;
  Publisher* pub = nullptr;

  void send(const uint8_t* data, size_t len) override { raw.insert(raw.end(), data, data + len); }
  void on_status(PublisherStatus s, std::string_view reason) override { statuses.emplace_back(s, std::string(reason)); }

  // Reads what came since the last call (after C0 C1 C2).
  void read() {
    size_t start = std::max(fed, 1 + 2 * kHandshakeSize);
    if (raw.size() <= start) return;
    std::vector<uint8_t> fresh(raw.begin() + static_cast<ptrdiff_t>(start), raw.end());
    fed = raw.size();
    REQUIRE(rtmp_test::feed_random(reader, got, fresh, rng, max_piece) == ChunkReader::Result::Ok);
  }
  std::vector<OwnedMessage> take() {
    read();
    auto m = std::move(got.messages);
    got.messages.clear();
    return m;
  }
  // Bytes to the publisher in random pieces.
  void to_pub(const std::vector<uint8_t>& b) {
    size_t pos = 0;
    while (pos < b.size()) {
      size_t n = std::min(b.size() - pos, std::uniform_int_distribution<size_t>(1, max_piece)(rng));
      pub->on_bytes(b.data() + pos, n);
      pos += n;
    }
  }
  void handshake(uint8_t version = 3) {
    REQUIRE(raw.size() == 1 + kHandshakeSize);
    CHECK(raw[0] == 3);
    std::vector<uint8_t> s(1 + 2 * kHandshakeSize, 0x5A);
    s[0] = version;
    std::copy(raw.begin() + 1, raw.end(), s.begin() + 1 + kHandshakeSize);  // S2 = C1
    to_pub(s);
  }
  void command(uint32_t sid, const std::vector<amf0::Value>& vals) {
    std::vector<uint8_t> body, out;
    for (const auto& v : vals) amf0::encode(body, v);
    writer.write(out, 3, kCommandAmf0, sid, 0, body.data(), body.size());
    to_pub(out);
  }
  static amf0::Value status_info(const char* level, const char* code, const char* desc) {
    return amf0::Value::object({{"level", amf0::Value::str(level)}, {"code", amf0::Value::str(code)},
                                {"description", amf0::Value::str(desc)}});
  }
  std::vector<Command> commands(const std::vector<OwnedMessage>& msgs) {
    std::vector<Command> out;
    for (const auto& m : msgs) {
      if (m.header.type != kCommandAmf0) continue;
      Command c;
      const char* err = nullptr;
      REQUIRE(amf0::decode_all(m.payload.data(), m.payload.size(), &c.args, &err));
      REQUIRE(c.args.size() >= 2);
      c.name = c.args[0].string;
      c.txn = c.args[1].number;
      c.stream_id = m.header.stream_id;
      out.push_back(std::move(c));
    }
    return out;
  }

  // Drives a publisher to Publishing, checking each step of the command sequence.
  void establish(Publisher& p) {
    pub = &p;
    p.on_connected();
    handshake();
    auto msgs = take();
    REQUIRE(msgs.size() == 3);
    CHECK(msgs[0].header.type == kSetChunkSize);
    CHECK(msgs[1].header.type == kWindowAckSize);
    auto cmds = commands(msgs);
    REQUIRE(cmds.size() == 1);
    CHECK(cmds[0].name == "connect");
    CHECK(cmds[0].txn == 1);
    CHECK(cmds[0].args[2].get_string("app") == "live");
    CHECK(cmds[0].args[2].get_string("tcUrl") == "rtmp://127.0.0.1:19350/live");
    CHECK(reader.chunk_size() == 4096);
    // What nginx-rtmp sends on connect.
    std::vector<uint8_t> ctl;
    write_window_ack_size(writer, ctl, 5000000);
    write_set_peer_bandwidth(writer, ctl, 5000000, 2);
    write_set_chunk_size(writer, ctl, 4000);
    to_pub(ctl);
    writer.set_chunk_size(4000);
    command(0, {amf0::Value::str("_result"), amf0::Value::num(1),
                amf0::Value::object({{"fmsVer", amf0::Value::str("FMS/3,0,1,123")}, {"capabilities", amf0::Value::num(31)}}),
                status_info("status", "NetConnection.Connect.Success", "Connection succeeded.")});
    cmds = commands(take());
    REQUIRE(cmds.size() == 3);
    CHECK(cmds[0].name == "releaseStream");
    CHECK(cmds[0].args[3].string == "cam1");
    CHECK(cmds[1].name == "FCPublish");
    CHECK(cmds[2].name == "createStream");
    command(0, {amf0::Value::str("onFCPublish"), amf0::Value::num(0), amf0::Value::null()});
    command(0, {amf0::Value::str("_result"), amf0::Value::num(cmds[2].txn), amf0::Value::null(), amf0::Value::num(1)});
    cmds = commands(take());
    REQUIRE(cmds.size() == 1);
    CHECK(cmds[0].name == "publish");
    CHECK(cmds[0].stream_id == 1);
    CHECK(cmds[0].args[3].string == "cam1");
    CHECK(cmds[0].args[4].string == "live");
    CHECK(p.status() == PublisherStatus::Connecting);
    command(1, {amf0::Value::str("onStatus"), amf0::Value::num(0), amf0::Value::null(),
                status_info("status", "NetStream.Publish.Start", "Start publishing")});
    REQUIRE(p.status() == PublisherStatus::Publishing);
    auto meta = take();
    REQUIRE(meta.size() == 1);
    CHECK(meta[0].header.type == kDataAmf0);
    CHECK(meta[0].header.stream_id == 1);
  }
};

PublisherConfig config() {
  PublisherConfig c;
  c.url = "rtmp://127.0.0.1:19350/live/cam1";
  return c;
}

int32_t cts_of(const OwnedMessage& m) {
  int32_t v = m.payload[2] << 16 | m.payload[3] << 8 | m.payload[4];
  return v >= (1 << 23) ? v - (1 << 24) : v;
}

}  // namespace

TEST_CASE("publisher: handshake, commands, metadata, then video and audio tags") {
  for (size_t piece : {size_t{1}, size_t{7}, size_t{700}, size_t{100000}}) {
    CAPTURE(piece);
    Server srv;
    srv.max_piece = piece;
    Publisher pub(config(), srv);
    auto k = keyframe_au(), p = p_au();
    std::vector<uint8_t> pcma(160, 0xD5);
    pub.push_video(video(k, true), 0, 0);  // before Publishing: dropped
    pub.push_audio(audio(pcma), 0);
    CHECK(pub.stats().dropped_not_publishing == 2);
    srv.establish(pub);
    REQUIRE(srv.statuses.size() == 2);
    CHECK(srv.statuses[0].first == PublisherStatus::Connecting);
    CHECK(srv.statuses[1].first == PublisherStatus::Publishing);

    pub.push_video(video(p, false), 1000, 1000);  // no keyframe yet: dropped
    CHECK(pub.stats().dropped_wait_keyframe == 1);
    pub.push_video(video(k, true), 1040, 1120);  // B-frame style reorder: cts 80
    pub.push_audio(audio(pcma), 1030);           // before the base: clamped to 0
    pub.push_audio(audio(pcma), 1050);
    pub.push_video(video(p, false), 1080, 1080);
    auto m = srv.take();
    REQUIRE(m.size() == 5);
    // AVC sequence header, then the keyframe, both at time 0 (the first frame sent is the base).
    CHECK(m[0].header.type == kVideoMessage);
    CHECK(m[0].payload[0] == 0x17);
    CHECK(m[0].payload[1] == 0);
    CHECK(m[0].header.timestamp == 0);
    CHECK(m[1].payload[1] == 1);
    CHECK(m[1].payload[0] == 0x17);
    CHECK(cts_of(m[1]) == 80);
    CHECK(m[1].header.timestamp == 0);
    CHECK(m[1].payload.size() == 5 + 4 + 301);  // SPS/PPS left out of the NALU tag
    CHECK(m[2].header.type == kAudioMessage);
    CHECK(m[2].payload[0] == 0x72);
    CHECK(m[2].header.timestamp == 0);
    CHECK(m[3].header.timestamp == 10);
    CHECK(m[3].payload.size() == 161);
    CHECK(m[4].payload[0] == 0x27);
    CHECK(m[4].header.timestamp == 40);
    CHECK(cts_of(m[4]) == 0);
    for (const auto& x : m) CHECK(x.header.stream_id == 1);
    auto st = pub.stats();
    CHECK(st.video_frames == 2);
    CHECK(st.audio_frames == 2);
    CHECK(st.sequence_headers == 1);
    CHECK(st.video_dropped == 2);
    CHECK(st.audio_dropped == 1);
    // Same SPS/PPS on the next keyframe: no new sequence header; a new SPS: one.
    pub.push_video(video(k, true), 1120, 1120);
    CHECK(pub.stats().sequence_headers == 1);
    auto k2 = k;
    k2[4 + 3] = 0x1F;  // level 3.1
    pub.push_video(video(k2, true), 1160, 1160);
    CHECK(pub.stats().sequence_headers == 2);
    m = srv.take();
    REQUIRE(m.size() == 3);
    CHECK(m[1].payload[1] == 0);
    CHECK(m[1].payload[8] == 0x1F);
  }
}

TEST_CASE("publisher: extended timestamps, a timestamp going back, parameter sets from a config frame") {
  Server srv;
  Publisher pub(config(), srv);
  srv.establish(pub);
  std::vector<uint8_t> ps = {0, 0, 0, 1};
  ps.insert(ps.end(), kSps.begin(), kSps.end());
  ps.insert(ps.end(), {0, 0, 0, 1});
  ps.insert(ps.end(), kPps.begin(), kPps.end());
  pub.push_video(video(ps, false), 5, 5);  // parameter sets only: remembered, not counted
  std::vector<uint8_t> idr = {0, 0, 0, 1, 0x65, 0x88, 0x80};
  pub.push_video(video(idr, true), 100, 100);
  auto p = p_au();
  pub.push_video(video(p, false), 100 + 0x1000000, 100 + 0x1000000);
  pub.push_video(video(p, false), 90 + 0x1000000, 90 + 0x1000000);  // goes back: held at the last
  auto m = srv.take();
  REQUIRE(m.size() == 4);
  CHECK(m[0].payload[1] == 0);  // sequence header from the config frame's SPS/PPS
  CHECK(m[2].header.timestamp == 0x1000000);
  CHECK(m[3].header.timestamp == 0x1000000);
  CHECK(pub.stats().video_dropped == 0);
}

TEST_CASE("publisher: AAC needs its config, sends an AAC sequence header once") {
  Server srv;
  Publisher pub(config(), srv);
  srv.establish(pub);
  std::vector<uint8_t> raw = {0x21, 0x10, 0x04};
  std::vector<uint8_t> asc = {0x12, 0x10};
  pub.push_audio(audio(raw, JN_CODEC_AAC), 0);
  CHECK(pub.stats().dropped_invalid == 1);
  pub.push_audio(audio(asc, JN_CODEC_AAC, JN_MF_CONFIG), 0);
  pub.push_audio(audio(raw, JN_CODEC_AAC), 0);
  pub.push_audio(audio(raw, JN_CODEC_AAC), 23);
  std::vector<uint8_t> opus = {1, 2};
  pub.push_audio(audio(opus, JN_CODEC_OPUS), 40);
  auto m = srv.take();
  REQUIRE(m.size() == 3);
  CHECK(m[0].payload == std::vector<uint8_t>{0xAF, 0x00, 0x12, 0x10});
  CHECK(m[1].payload == std::vector<uint8_t>{0xAF, 0x01, 0x21, 0x10, 0x04});
  CHECK(m[2].header.timestamp == 23);
  CHECK(pub.stats().dropped_invalid == 2);
}

TEST_CASE("publisher: hold_media keeps media until flush(), counted as sent; a command takes it along in order") {
  Server srv;
  PublisherConfig c = config();
  c.hold_media = true;
  Publisher pub(c, srv);
  srv.establish(pub);
  size_t before = srv.raw.size();
  uint64_t sent0 = pub.stats().bytes_sent;
  std::vector<uint8_t> g711(160, 0xD5);
  pub.push_audio(audio(g711, JN_CODEC_PCMA), 0);
  pub.push_audio(audio(g711, JN_CODEC_PCMA), 20);
  CHECK(srv.raw.size() == before);  // nothing written yet
  CHECK(pub.held() > 2 * 160);
  CHECK(pub.stats().bytes_sent == sent0 + pub.held());
  size_t held = pub.held();
  pub.flush();
  CHECK(pub.held() == 0);
  CHECK(srv.raw.size() == before + held);  // one send with both messages
  auto m = srv.take();
  REQUIRE(m.size() == 2);
  CHECK(m[1].header.timestamp == 20);
  // held media, then unpublish: its commands go after the media, in one order
  pub.push_audio(audio(g711, JN_CODEC_PCMA), 40);
  pub.unpublish();
  CHECK(pub.held() == 0);
  m = srv.take();
  REQUIRE(m.size() >= 2);
  CHECK(m[0].header.type == 8);  // the audio first
  CHECK(m[0].header.timestamp == 40);
}

TEST_CASE("publisher: acknowledges the server's window and answers pings") {
  Server srv;
  Publisher pub(config(), srv);
  srv.establish(pub);  // the server announced a 5000000-byte window: no Acknowledgement yet
  std::vector<uint8_t> ctl;
  write_window_ack_size(srv.writer, ctl, 64);
  write_user_control(srv.writer, ctl, kPingRequest, 4242);
  srv.to_pub(ctl);
  auto m = srv.take();
  bool ack = false, pong = false;
  for (const auto& x : m) {
    if (x.header.type == kAcknowledgement) {
      ack = true;
      uint32_t seq = uint32_t(x.payload[0]) << 24 | x.payload[1] << 16 | x.payload[2] << 8 | x.payload[3];
      CHECK(seq == pub.stats().bytes_received - (1 + 2 * kHandshakeSize));
    }
    if (x.header.type == kUserControl) {
      pong = true;
      CHECK(x.payload == std::vector<uint8_t>{0, 7, 0, 0, 0x10, 0x92});
    }
  }
  CHECK(ack);
  CHECK(pong);
  CHECK(pub.stats().acks_sent >= 1);
  CHECK(pub.stats().pings_answered == 1);
  CHECK(pub.stats().server_window == 64);
  CHECK(pub.stats().server_chunk_size == 4000);
}

TEST_CASE("publisher: frames dropped while unacknowledged bytes exceed the bound; video resumes at a keyframe") {
  Server srv;
  auto cfg = config();
  cfg.max_queue_bytes = 2000;
  Publisher pub(cfg, srv);
  srv.establish(pub);
  auto k = keyframe_au(), p = p_au(200);
  std::vector<uint8_t> pcma(160, 0xD5);
  // No Acknowledgement yet: the bound cannot be measured and is not applied.
  for (int i = 0; i < 10; ++i) pub.push_video(video(i == 0 ? k : p, i == 0), i * 40, i * 40);
  CHECK(pub.stats().video_frames == 10);
  CHECK(pub.stats().bytes_sent > 2100 + 1 + 2 * kHandshakeSize);
  CHECK(pub.unacknowledged() == 0);
  // The server acknowledges only the first 100 bytes: over 2000 are in flight.
  std::vector<uint8_t> ack;
  write_acknowledgement(srv.writer, ack, 10);
  srv.to_pub(ack);
  CHECK(pub.unacknowledged() > 2000);
  pub.push_video(video(p, false), 400, 400);
  pub.push_audio(audio(pcma), 400);
  CHECK(pub.stats().dropped_backlog == 2);
  // All acknowledged: audio flows, video waits for the next keyframe.
  ack.clear();
  write_acknowledgement(srv.writer, ack, static_cast<uint32_t>(pub.stats().bytes_sent - (1 + 2 * kHandshakeSize)));
  srv.to_pub(ack);
  CHECK(pub.unacknowledged() == 0);
  pub.push_audio(audio(pcma), 420);
  pub.push_video(video(p, false), 440, 440);
  CHECK(pub.stats().dropped_wait_keyframe == 1);
  pub.push_video(video(k, true), 480, 480);
  CHECK(pub.stats().video_frames == 11);
  CHECK(pub.stats().audio_frames == 1);
  CHECK(pub.stats().video_dropped == 2);
  CHECK(pub.stats().audio_dropped == 1);
}

TEST_CASE("publisher: refusals and protocol errors make it Failed with the reason") {
  SUBCASE("connect _error") {
    Server srv;
    Publisher pub(config(), srv);
    srv.pub = &pub;
    pub.on_connected();
    srv.handshake();
    srv.command(0, {amf0::Value::str("_error"), amf0::Value::num(1), amf0::Value::null(),
                    Server::status_info("error", "NetConnection.Connect.Rejected", "no such app")});
    CHECK(pub.status() == PublisherStatus::Failed);
    CHECK(pub.reason().find("NetConnection.Connect.Rejected") != std::string::npos);
    CHECK(pub.reason().find("no such app") != std::string::npos);
    CHECK(srv.statuses.back().first == PublisherStatus::Failed);
    // Later bytes and a close change nothing.
    size_t sent = srv.raw.size();
    srv.command(0, {amf0::Value::str("_result"), amf0::Value::num(1)});
    pub.on_disconnected();
    CHECK(srv.raw.size() == sent);
    CHECK(srv.statuses.size() == 2);
  }
  SUBCASE("publish refused by onStatus error (stream name in use)") {
    Server srv;
    Publisher pub(config(), srv);
    srv.pub = &pub;
    pub.on_connected();
    srv.handshake();
    srv.command(0, {amf0::Value::str("_result"), amf0::Value::num(1), amf0::Value::null(), amf0::Value::null()});
    srv.command(0, {amf0::Value::str("_error"), amf0::Value::num(2), amf0::Value::null(), amf0::Value::null()});
    CHECK(pub.status() == PublisherStatus::Connecting);  // releaseStream refused: harmless
    srv.command(0, {amf0::Value::str("_result"), amf0::Value::num(4), amf0::Value::null(), amf0::Value::num(7)});
    srv.command(7, {amf0::Value::str("onStatus"), amf0::Value::num(0), amf0::Value::null(),
                    Server::status_info("error", "NetStream.Publish.BadName", "Already publishing")});
    CHECK(pub.status() == PublisherStatus::Failed);
    CHECK(pub.reason().find("NetStream.Publish.BadName") != std::string::npos);
  }
  SUBCASE("createStream result without a stream id") {
    Server srv;
    Publisher pub(config(), srv);
    srv.pub = &pub;
    pub.on_connected();
    srv.handshake();
    srv.command(0, {amf0::Value::str("_result"), amf0::Value::num(1)});
    srv.command(0, {amf0::Value::str("_result"), amf0::Value::num(4), amf0::Value::null(), amf0::Value::str("x")});
    CHECK(pub.status() == PublisherStatus::Failed);
    CHECK(pub.reason().find("stream id") != std::string::npos);
  }
  SUBCASE("createStream result with a NaN stream id (fuzz crash 39cf8371)") {
    Server srv;
    Publisher pub(config(), srv);
    srv.pub = &pub;
    pub.on_connected();
    srv.handshake();
    srv.command(0, {amf0::Value::str("_result"), amf0::Value::num(1)});
    srv.command(0, {amf0::Value::str("_result"), amf0::Value::num(4), amf0::Value::null(),
                    amf0::Value::num(std::numeric_limits<double>::quiet_NaN())});
    CHECK(pub.status() == PublisherStatus::Failed);
    CHECK(pub.reason().find("stream id") != std::string::npos);
  }
  SUBCASE("wrong RTMP version") {
    Server srv;
    Publisher pub(config(), srv);
    srv.pub = &pub;
    pub.on_connected();
    srv.handshake(6);
    CHECK(pub.status() == PublisherStatus::Failed);
    CHECK(pub.reason().find("version 6") != std::string::npos);
  }
  SUBCASE("a chunk stream error") {
    Server srv;
    Publisher pub(config(), srv);
    srv.pub = &pub;
    pub.on_connected();
    srv.handshake();
    srv.to_pub({0xC3, 0, 0});
    CHECK(pub.status() == PublisherStatus::Failed);
    CHECK(pub.reason().find("protocol error") != std::string::npos);
  }
  SUBCASE("a bad AMF0 command") {
    Server srv;
    Publisher pub(config(), srv);
    srv.pub = &pub;
    pub.on_connected();
    srv.handshake();
    std::vector<uint8_t> out;
    uint8_t bad[3] = {0x02, 0x00, 0x09};  // a string longer than the message
    srv.writer.write(out, 3, kCommandAmf0, 0, 0, bad, 3);
    srv.to_pub(out);
    CHECK(pub.status() == PublisherStatus::Failed);
    CHECK(pub.reason().find("AMF0") != std::string::npos);
  }
}

TEST_CASE("publisher: close, unpublish, bad URL") {
  {
    Server srv;
    Publisher pub(config(), srv);
    srv.establish(pub);
    pub.on_disconnected();
    CHECK(pub.status() == PublisherStatus::Closed);
    CHECK(srv.statuses.back().second == "connection closed");
    std::vector<uint8_t> pcma(160, 0xD5);
    pub.push_audio(audio(pcma), 0);
    CHECK(pub.stats().dropped_not_publishing == 1);
  }
  {
    Server srv;
    Publisher pub(config(), srv);
    srv.establish(pub);
    pub.unpublish();
    CHECK(pub.status() == PublisherStatus::Closed);
    auto cmds = srv.commands(srv.take());
    REQUIRE(cmds.size() == 2);
    CHECK(cmds[0].name == "FCUnpublish");
    CHECK(cmds[1].name == "deleteStream");
    CHECK(cmds[1].args[3].number == 1);
  }
  {
    Server srv;
    Publisher pub(config(), srv);
    srv.pub = &pub;
    pub.on_connected();
    pub.on_disconnected();
    CHECK(pub.status() == PublisherStatus::Closed);
    CHECK(srv.statuses.back().second == "connection closed during the handshake");
  }
  {
    Server srv;
    PublisherConfig c;
    c.url = "http://127.0.0.1/live/x";
    Publisher pub(c, srv);
    CHECK(pub.status() == PublisherStatus::Failed);
    CHECK(srv.statuses.empty());
    pub.on_connected();
    REQUIRE(srv.statuses.size() == 1);
    CHECK(srv.statuses[0].first == PublisherStatus::Failed);
    CHECK(srv.statuses[0].second.find("rtmp://") != std::string::npos);
    CHECK(srv.raw.empty());
  }
}

TEST_CASE("publisher: parse_url") {
  RtmpUrl u;
  std::string err;
  REQUIRE(parse_url("rtmp://127.0.0.1/live/cam1", "", &u, &err));
  CHECK(u.host == "127.0.0.1");
  CHECK(u.port == 1935);
  CHECK(u.app == "live");
  CHECK(u.stream == "cam1");
  CHECK(u.tc_url == "rtmp://127.0.0.1/live");
  REQUIRE(parse_url("RTMP://example.test:1940/app/inst/stream?key=abc", "", &u, &err));
  CHECK(u.host == "example.test");
  CHECK(u.port == 1940);
  CHECK(u.app == "app/inst");
  CHECK(u.stream == "stream?key=abc");
  CHECK(u.tc_url == "rtmp://example.test:1940/app/inst");
  REQUIRE(parse_url("rtmp://[::1]:1936/live/", "s1", &u, &err));
  CHECK(u.host == "::1");
  CHECK(u.port == 1936);
  CHECK(u.app == "live");
  CHECK(u.stream == "s1");
  CHECK(u.tc_url == "rtmp://[::1]:1936/live");
  REQUIRE(parse_url("rtmp://h/live/inst", "s", &u, &err));
  CHECK(u.app == "live/inst");
  for (const char* bad : {"rtmps://h/live/s", "rtmp:///live/s", "rtmp://h:0/live/s", "rtmp://h:99999/live/s",
                          "rtmp://h:x/live/s", "rtmp://h:/live/s", "rtmp://h/live", "rtmp://h", "rtmp://[::1/live/s",
                          "rtmp://u:p@h/live/s", "rtmp://h//s"}) {
    CAPTURE(bad);
    err.clear();
    CHECK_FALSE(parse_url(bad, "", &u, &err));
    CHECK_FALSE(err.empty());
  }
}

TEST_CASE("publisher: a video frame with JN_MF_DISCONT makes video wait for the next keyframe") {
  Server srv;
  Publisher pub(config(), srv);
  srv.establish(pub);
  CHECK(pub.wants_keyframe());
  auto k = keyframe_au(), p = p_au();
  pub.push_video(video(k, true), 0, 0);
  CHECK_FALSE(pub.wants_keyframe());
  pub.push_video(video(p, false), 40, 40);
  auto lost = video(p, false);
  lost.meta.frame_flags = JN_MF_DISCONT;
  pub.push_video(lost, 120, 120);
  CHECK(pub.wants_keyframe());
  pub.push_video(video(p, false), 160, 160);
  CHECK(pub.stats().dropped_wait_keyframe == 2);
  auto key_after_loss = video(k, true);
  key_after_loss.meta.frame_flags |= JN_MF_DISCONT;  // a keyframe is fine whatever came before
  pub.push_video(key_after_loss, 200, 200);
  CHECK_FALSE(pub.wants_keyframe());
  CHECK(pub.stats().video_frames == 3);
  auto m = srv.take();
  REQUIRE(m.size() == 4);  // sequence header, key, P, key
  CHECK(m[3].header.timestamp == 200);
  CHECK(m[3].payload[0] == 0x17);
}

TEST_CASE("publisher: save and restore continue the same RTMP stream (hot reload)") {
  Server srv;
  auto old_pub = std::make_unique<Publisher>(config(), srv);
  CHECK(old_pub->save().empty());  // not Publishing yet
  srv.establish(*old_pub);
  auto k = keyframe_au(), p = p_au();
  std::vector<uint8_t> pcma(160, 0xD5);

  old_pub->push_video(video(k, true), 5000, 5000);
  old_pub->push_audio(audio(pcma), 5000);
  old_pub->push_video(video(p, false), 5040, 5040);
  REQUIRE(srv.take().size() == 4);
  // A ping request of which only part has arrived when the plugin reloads; a fmt-1 header later
  // relies on the saved chunk stream state.
  std::vector<uint8_t> ping;
  write_user_control(srv.writer, ping, kPingRequest, 99);
  size_t half = ping.size() - 3;
  old_pub->on_bytes(ping.data(), half);
  std::string state = old_pub->save();
  REQUIRE_FALSE(state.empty());
  auto before = old_pub->stats();
  old_pub.reset();

  Publisher pub(config(), srv);
  srv.pub = &pub;
  std::string err;
  REQUIRE_MESSAGE(pub.restore(state, err), err);
  CHECK(pub.status() == PublisherStatus::Publishing);
  CHECK(srv.statuses.size() == 2);  // no callback from restore
  CHECK(pub.stats().video_frames == before.video_frames);
  CHECK(pub.stats().stream_id == 1);
  pub.on_bytes(ping.data() + half, ping.size() - half);
  CHECK(pub.stats().pings_answered == 1);
  pub.push_video(video(p, false), 5080, 5080);  // no keyframe wait, no new sequence header
  pub.push_video(video(k, true), 5120, 5120);   // same SPS/PPS: still none
  pub.push_audio(audio(pcma), 5020);
  auto m = srv.take();  // the same server-side reader: the chunk stream continues
  REQUIRE(m.size() == 4);
  CHECK(m[0].header.type == kUserControl);
  CHECK(m[0].payload == std::vector<uint8_t>{0, 7, 0, 0, 0, 99});
  CHECK(m[1].header.timestamp == 80);  // the timestamp base survived
  CHECK(m[1].payload[0] == 0x27);
  CHECK(m[2].payload[0] == 0x17);
  CHECK(m[2].payload[1] == 1);
  CHECK(m[3].header.timestamp == 20);
  CHECK(pub.stats().sequence_headers == 1);
  CHECK(pub.stats().video_frames == before.video_frames + 2);
  // Refusals.
  Publisher late(config(), srv);
  srv.pub = &late;
  late.on_connected();
  CHECK_FALSE(late.restore(state, err));
  PublisherConfig other = config();
  other.url = "rtmp://127.0.0.1:19350/live/other";
  Publisher wrong(other, srv);
  CHECK_FALSE(wrong.restore(state, err));
  CHECK(err.find("another URL") != std::string::npos);
  Publisher garbage(config(), srv);
  CHECK_FALSE(garbage.restore("{\"v\":1}", err));
  CHECK_FALSE(garbage.restore("not json", err));
  CHECK(garbage.status() == PublisherStatus::Connecting);
}

TEST_CASE("chunk reader: save/restore mid-header and mid-message") {
  ChunkWriter w;
  std::vector<uint8_t> b;
  auto payload = std::vector<uint8_t>(500, 0x42);
  w.write(b, 70, kVideoMessage, 3, 0xFFFFFF + 5, payload.data(), payload.size());
  w.write(b, 70, kVideoMessage, 3, 40, payload.data(), 10);
  for (size_t cut : {size_t{1}, size_t{5}, size_t{13}, size_t{100}, size_t{140}, b.size() - 2}) {
    CAPTURE(cut);
    ChunkReader a;
    rtmp_test::Collector c;
    REQUIRE(a.feed(b.data(), cut, c) == ChunkReader::Result::Ok);
    ChunkReader r;
    std::string err;
    REQUIRE_MESSAGE(r.restore(a.save(), err), err);
    REQUIRE(r.feed(b.data() + cut, b.size() - cut, c) == ChunkReader::Result::Ok);
    REQUIRE(c.messages.size() == 2);
    CHECK(c.messages[0].payload == payload);
    CHECK(c.messages[0].header.timestamp == 0xFFFFFF + 5);
    CHECK(c.messages[1].header.length == 10);
    CHECK(r.bytes() == b.size());
  }
  ChunkReader r;
  std::string err;
  CHECK_FALSE(r.restore("{}", err));
  CHECK_FALSE(r.restore("{\"v\":1,\"chunk_size\":0}", err));
}
