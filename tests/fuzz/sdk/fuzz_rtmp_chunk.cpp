// Fuzz target: server bytes into sdk/rtmp (the chunk reader, AMF0, the Publisher in every state).
// Input: byte 0 = the Publisher state to reach with a scripted, valid server first (0 handshake
// pending, 1 connect sent, 2 createStream sent, 3 publish sent, 4 publishing) and, in its high
// bits, the piece size the rest is fed in; the rest = server bytes. Invariants, abort() when one
// breaks:
//  - a ChunkReader gives the same messages and result whether fed all at once or in pieces;
//  - every AMF0 command/data message that decodes re-encodes to a value that decodes equal;
//  - whatever the server sends, the Publisher's own output stays a valid chunk stream of valid
//    AMF0 commands (read back by a server-side ChunkReader), it sends nothing once Failed or
//    Closed, statuses only move Connecting -> Publishing -> Failed/Closed, and on_disconnected
//    always leaves it Failed or Closed.
#include <junction/rtmp/amf0.hpp>
#include <junction/rtmp/chunk.hpp>
#include <junction/rtmp/publisher.hpp>

#include <cstdint>
#include <cstdlib>
#include <vector>

using namespace junction;
using namespace junction::rtmp;

namespace {

// Digest of the messages a reader delivers (order, headers, payload bytes).
struct Digest final : ChunkReader::Sink {
  uint64_t h = 1469598103934665603ull;
  size_t count = 0;
  void mix(uint64_t v) { h = (h ^ v) * 1099511628211ull; }
  bool on_message(const Message& m) override {
    ++count;
    mix(m.csid);
    mix(m.header.type);
    mix(m.header.length);
    mix(m.header.timestamp);
    mix(m.header.stream_id);
    for (uint32_t i = 0; i < m.header.length; ++i) mix(m.payload[i]);
    if (m.header.type == kCommandAmf0 || m.header.type == kDataAmf0) {
      std::vector<amf0::Value> vals, again;
      const char* err = nullptr;
      if (amf0::decode_all(m.payload, m.header.length, &vals, &err)) {
        std::vector<uint8_t> enc;
        for (const auto& v : vals) amf0::encode(enc, v);
        if (!amf0::decode_all(enc.data(), enc.size(), &again, &err) || again != vals) abort();
      }
    }
    return true;
  }
};

// What the publisher sends, read as a server reads it.
struct ClientSide final : PublisherCallbacks, ChunkReader::Sink {
  ChunkReader reader{16u << 20};
  uint64_t raw = 0;  // bytes sent
  bool terminal = false;
  bool publishing = false;
  void send(const uint8_t* data, size_t len) override {
    if (terminal || len == 0) abort();
    // C0 + C1 (1537), then C2 (1536): the chunk stream starts after them.
    constexpr uint64_t kHs = 1 + 2 * kHandshakeSize;
    size_t skip = raw >= kHs ? 0 : static_cast<size_t>(std::min<uint64_t>(kHs - raw, len));
    raw += len;
    if (skip < len && reader.feed(data + skip, len - skip, *this) != ChunkReader::Result::Ok) abort();
  }
  void on_status(PublisherStatus s, std::string_view) override {
    if (terminal) abort();
    if (s == PublisherStatus::Publishing) {
      if (publishing) abort();
      publishing = true;
    }
    if (s == PublisherStatus::Connecting && publishing) abort();
    if (s == PublisherStatus::Failed || s == PublisherStatus::Closed) terminal = true;
  }
  bool on_message(const Message& m) override {
    if (m.header.type == kCommandAmf0 || m.header.type == kDataAmf0) {
      std::vector<amf0::Value> vals;
      const char* err = nullptr;
      if (!amf0::decode_all(m.payload, m.header.length, &vals, &err) || vals.empty() ||
          vals[0].type != amf0::Type::String)
        abort();
    }
    return true;
  }
};

void command(const ChunkWriter& w, std::vector<uint8_t>& out, uint32_t sid, const std::vector<amf0::Value>& vals) {
  std::vector<uint8_t> body;
  for (const auto& v : vals) amf0::encode(body, v);
  w.write(out, 3, kCommandAmf0, sid, 0, body.data(), body.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t* in = data + 1;
  size_t n = size - 1;
  size_t step = 1 + (data[0] >> 3);

  // The chunk reader alone: whole vs pieces.
  {
    ChunkReader whole(1u << 16), pieces(1u << 16);
    Digest a, b;
    auto ra = whole.feed(in, n, a);
    auto rb = ChunkReader::Result::Ok;
    for (size_t off = 0; off < n && rb == ChunkReader::Result::Ok; off += step)
      rb = pieces.feed(in + off, step < n - off ? step : n - off, b);
    if (ra != rb || a.h != b.h || a.count != b.count) abort();
    if ((ra == ChunkReader::Result::Error) != (whole.error() != nullptr)) abort();
  }

  // The publisher, brought to a state by a valid server, then fed the input.
  ClientSide client;
  PublisherConfig cfg;
  cfg.url = "rtmp://127.0.0.1/live/fuzz";
  cfg.max_queue_bytes = 1024;  // small: acknowledgements in the input decide the drops
  Publisher pub(cfg, client);
  pub.on_connected();
  unsigned state = data[0] & 7;
  if (state > 4) state = 4;
  std::vector<uint8_t> script;
  ChunkWriter w;
  if (state >= 1) {
    script.assign(1 + 2 * kHandshakeSize, 0);
    script[0] = 3;
  }
  if (state >= 2)
    command(w, script, 0, {amf0::Value::str("_result"), amf0::Value::num(1), amf0::Value::null(), amf0::Value::null()});
  if (state >= 3)
    command(w, script, 0, {amf0::Value::str("_result"), amf0::Value::num(4), amf0::Value::null(), amf0::Value::num(1)});
  if (state >= 4)
    command(w, script, 1, {amf0::Value::str("onStatus"), amf0::Value::num(0), amf0::Value::null(),
                           amf0::Value::object({{"level", amf0::Value::str("status")},
                                                {"code", amf0::Value::str("NetStream.Publish.Start")}})});
  pub.on_bytes(script.data(), script.size());
  if (state == 4 && pub.status() != PublisherStatus::Publishing) abort();

  static const uint8_t kKey[] = {0, 0, 0, 1, 0x67, 0x42, 0xC0, 0x1E, 0xD9, 0, 0, 0, 1, 0x68, 0xCB, 0x83,
                                 0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21, 0xA0};
  static const uint8_t kP[] = {0, 0, 0, 1, 0x41, 0x9A, 0x02, 0x03};
  static const uint8_t kPcma[160] = {};
  uint32_t ts = 0;
  for (size_t off = 0; off < n; off += step) {
    pub.on_bytes(in + off, step < n - off ? step : n - off);
    media::FrameView v{(off / step) % 5 == 0 ? kKey : kP, (off / step) % 5 == 0 ? sizeof kKey : sizeof kP, {}};
    v.meta.codec = JN_CODEC_H264;
    pub.push_video(v, ts, ts);
    media::FrameView a{kPcma, sizeof kPcma, {}};
    a.meta.codec = JN_CODEC_PCMA;
    pub.push_audio(a, ts);
    ts += 20;
    if (pub.unacknowledged() > (uint64_t{1} << 32)) abort();
  }
  if (data[0] & 0x80) pub.unpublish();
  pub.on_disconnected();
  if (pub.status() != PublisherStatus::Failed && pub.status() != PublisherStatus::Closed) abort();
  if (!client.terminal) abort();
  return 0;
}
