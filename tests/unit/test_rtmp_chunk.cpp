// sdk/rtmp chunk stream: ChunkWriter output read back by ChunkReader at every chunk size from 1
// to 300 (and large ones), every basic header size, extended timestamps (fmt 0 and the type-3
// continuations), input split at random; hand-built type 1/2/3 headers from the spec's examples;
// Set Chunk Size and Abort applied mid-stream; malformed streams refused with a reason.
#include <doctest/doctest.h>

#include "rtmp_test_util.hpp"

#include <junction/rtmp/chunk.hpp>

#include <random>

using namespace junction::rtmp;
using rtmp_test::Collector;
using rtmp_test::OwnedMessage;

namespace {

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

struct Sent {
  uint32_t csid;
  uint8_t type;
  uint32_t stream_id;
  uint32_t ts;
  std::vector<uint8_t> payload;
};

std::vector<Sent> workload() {
  std::vector<Sent> w;
  const uint32_t csids[] = {2, 3, 63, 64, 319, 320, 65599};
  const size_t lens[] = {0, 1, 127, 128, 129, 300, 1000, 5000};
  const uint32_t stamps[] = {0, 40, 0xFFFFFE, 0xFFFFFF, 0x1000000, 0xFFFFFFFF};
  uint8_t seed = 1;
  for (uint32_t c : csids)
    for (size_t l : lens) {
      uint32_t ts = stamps[(seed + l) % 6];
      w.push_back({c, kVideoMessage, 1u + c, ts, pattern(l, seed++)});
    }
  return w;
}

void check_same(const std::vector<OwnedMessage>& got, const std::vector<Sent>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i].csid == want[i].csid);
    CHECK(got[i].header.type == want[i].type);
    CHECK(got[i].header.stream_id == want[i].stream_id);
    CHECK(got[i].header.timestamp == want[i].ts);
    CHECK(got[i].header.length == want[i].payload.size());
    CHECK(got[i].payload == want[i].payload);
  }
}

}  // namespace

TEST_CASE("chunk: writer -> reader at every chunk size 1..300 and large ones, random splits") {
  auto w = workload();
  std::mt19937 rng(42);
  std::vector<uint32_t> sizes;
  for (uint32_t s = 1; s <= 300; ++s) sizes.push_back(s);
  for (uint32_t s : {1024u, 4096u, 4999u, 5000u, 65536u, kMaxChunkSize}) sizes.push_back(s);
  for (uint32_t size : sizes) {
    CAPTURE(size);
    ChunkWriter writer;
    std::vector<uint8_t> bytes;
    // The size is announced in-band at the default chunk size, as a peer does.
    write_set_chunk_size(writer, bytes, size);
    REQUIRE(writer.set_chunk_size(size));
    for (const auto& s : w) writer.write(bytes, s.csid, s.type, s.stream_id, s.ts, s.payload.data(), s.payload.size());
    ChunkReader reader;
    Collector c;
    REQUIRE(rtmp_test::feed_random(reader, c, bytes, rng) == ChunkReader::Result::Ok);
    CHECK(reader.chunk_size() == size);
    REQUIRE(c.messages.size() == w.size() + 1);
    CHECK(c.messages[0].header.type == kSetChunkSize);
    c.messages.erase(c.messages.begin());
    check_same(c.messages, w);
  }
}

TEST_CASE("chunk: byte at a time, and the extended timestamp repeated in type-3 chunks") {
  ChunkWriter writer;
  auto payload = pattern(300, 9);
  std::vector<uint8_t> bytes;
  writer.write(bytes, 6, kAudioMessage, 1, 0x12345678, payload.data(), payload.size());
  // fmt 0 header (1 + 11) + ext ts (4) + 128, then 2 x (1 + 4 + up to 128).
  CHECK(bytes.size() == 1 + 11 + 4 + 300 + 2 * (1 + 4));
  CHECK(bytes[0] == 6);
  CHECK(bytes[1] == 0xFF);
  CHECK(bytes[2] == 0xFF);
  CHECK(bytes[3] == 0xFF);
  CHECK(bytes[12] == 0x12);  // extended timestamp
  CHECK(bytes[16 + 128] == (3 << 6 | 6));
  CHECK(bytes[16 + 128 + 1] == 0x12);  // repeated in the type-3 chunk
  ChunkReader reader;
  Collector c;
  for (uint8_t b : bytes) REQUIRE(reader.feed(&b, 1, c) == ChunkReader::Result::Ok);
  REQUIRE(c.messages.size() == 1);
  CHECK(c.messages[0].header.timestamp == 0x12345678);
  CHECK(c.messages[0].payload == payload);
}

TEST_CASE("chunk: a message begun and put in pieces is the bytes write() makes") {
  std::mt19937 rng(7);
  for (uint32_t cs : {1u, 2u, 7u, 128u, 4096u}) {
    for (uint32_t ts : {0u, 1234u, 0xFFFFFFu, 0x12345678u}) {  // extended timestamps repeat in type-3 chunks
      for (size_t len : {size_t(0), size_t(1), size_t(cs), size_t(cs + 1), size_t(3 * cs + 5), size_t(10000)}) {
        ChunkWriter w;
        w.set_chunk_size(cs);
        auto payload = pattern(len, static_cast<uint8_t>(len));
        std::vector<uint8_t> whole, pieces;
        w.write(whole, 70, 9, 1, ts, payload.data(), payload.size());
        ChunkOut o = w.begin(pieces, 70, 9, 1, ts, len);
        size_t pos = 0;
        while (pos < len) {
          size_t n = std::min<size_t>(len - pos, 1 + rng() % 9);
          o.put(payload.data() + pos, n);
          pos += n;
        }
        CHECK(pieces == whole);
      }
    }
  }
}

TEST_CASE("chunk: basic header encodings (1, 2 and 3 bytes)") {
  ChunkWriter writer;
  uint8_t x = 0xAB;
  std::vector<uint8_t> b;
  writer.write(b, 63, 1, 0, 0, &x, 1);
  CHECK(b[0] == 63);
  b.clear();
  writer.write(b, 64, 1, 0, 0, &x, 1);
  CHECK(b[0] == 0);
  CHECK(b[1] == 0);
  b.clear();
  writer.write(b, 319, 1, 0, 0, &x, 1);
  CHECK(b[0] == 0);
  CHECK(b[1] == 255);
  b.clear();
  writer.write(b, 320, 1, 0, 0, &x, 1);
  CHECK(b[0] == 1);
  CHECK(b[1] == 0);
  CHECK(b[2] == 1);  // (320 - 64) = 256 = 0x0100, little endian
}

TEST_CASE("chunk: type 1, 2 and 3 headers as in the spec's examples") {
  // Example 1 (RTMP 1.0, 5.3.2.1): audio messages on csid 3, stream 12345, 32 bytes each,
  // timestamps 1000, 1020, 1040, 1060: type 0, then type 2 (delta 20), then type 3, type 3.
  std::vector<uint8_t> b;
  auto payload = pattern(32, 1);
  b.insert(b.end(), {0x03, 0x00, 0x03, 0xE8, 0x00, 0x00, 0x20, 0x08, 0x39, 0x30, 0x00, 0x00});
  b.insert(b.end(), payload.begin(), payload.end());
  b.insert(b.end(), {0x83, 0x00, 0x00, 0x14});
  b.insert(b.end(), payload.begin(), payload.end());
  b.push_back(0xC3);
  b.insert(b.end(), payload.begin(), payload.end());
  b.push_back(0xC3);
  b.insert(b.end(), payload.begin(), payload.end());
  // Example 2 (5.3.2.2): one 307-byte video message at chunk size 128: type 0 + two type 3.
  auto video = pattern(307, 5);
  b.insert(b.end(), {0x04, 0x00, 0x03, 0xE8, 0x00, 0x01, 0x33, 0x09, 0x39, 0x30, 0x00, 0x00});
  b.insert(b.end(), video.begin(), video.begin() + 128);
  b.push_back(0xC4);
  b.insert(b.end(), video.begin() + 128, video.begin() + 256);
  b.push_back(0xC4);
  b.insert(b.end(), video.begin() + 256, video.end());
  // A type 1 header: new length and type, delta 5, same stream.
  b.insert(b.end(), {0x44, 0x00, 0x00, 0x05, 0x00, 0x00, 0x02, 0x12, 0xAA, 0xBB});
  ChunkReader reader;
  Collector c;
  std::mt19937 rng(7);
  REQUIRE(rtmp_test::feed_random(reader, c, b, rng) == ChunkReader::Result::Ok);
  REQUIRE(c.messages.size() == 6);
  for (int i = 0; i < 4; ++i) {
    CHECK(c.messages[i].header.timestamp == 1000u + 20u * i);
    CHECK(c.messages[i].header.stream_id == 12345);
    CHECK(c.messages[i].header.type == kAudioMessage);
    CHECK(c.messages[i].payload == payload);
  }
  CHECK(c.messages[4].payload == video);
  CHECK(c.messages[4].header.timestamp == 1000);
  CHECK(c.messages[5].header.timestamp == 1005);
  CHECK(c.messages[5].header.type == kDataAmf0);
  CHECK(c.messages[5].header.stream_id == 12345);
  CHECK(c.messages[5].payload == std::vector<uint8_t>{0xAA, 0xBB});
}

TEST_CASE("chunk: Abort discards a partial message; a new message follows on that chunk stream") {
  ChunkWriter writer;
  auto big = pattern(200, 3);
  std::vector<uint8_t> b;
  writer.write(b, 5, kVideoMessage, 1, 0, big.data(), big.size());
  b.resize(12 + 128);  // only the first chunk
  uint8_t abort_body[4] = {0, 0, 0, 5};
  writer.write(b, 2, kAbort, 0, 0, abort_body, 4);
  auto small = pattern(10, 4);
  writer.write(b, 5, kVideoMessage, 1, 40, small.data(), small.size());
  ChunkReader reader;
  Collector c;
  REQUIRE(reader.feed(b.data(), b.size(), c) == ChunkReader::Result::Ok);
  REQUIRE(c.messages.size() == 2);
  CHECK(c.messages[0].header.type == kAbort);
  CHECK(c.messages[1].payload == small);
}

TEST_CASE("chunk: protocol control builders") {
  ChunkWriter w;
  std::vector<uint8_t> b;
  write_window_ack_size(w, b, 2500000);
  write_set_peer_bandwidth(w, b, 2500000, 2);
  write_acknowledgement(w, b, 0x01020304);
  write_user_control(w, b, kPingResponse, 77);
  write_set_chunk_size(w, b, 4096);
  ChunkReader r;
  Collector c;
  REQUIRE(r.feed(b.data(), b.size(), c) == ChunkReader::Result::Ok);
  REQUIRE(c.messages.size() == 5);
  for (const auto& m : c.messages) {
    CHECK(m.csid == 2);
    CHECK(m.header.stream_id == 0);
  }
  CHECK(c.messages[0].payload == std::vector<uint8_t>{0x00, 0x26, 0x25, 0xA0});
  CHECK(c.messages[1].payload == std::vector<uint8_t>{0x00, 0x26, 0x25, 0xA0, 2});
  CHECK(c.messages[2].payload == std::vector<uint8_t>{1, 2, 3, 4});
  CHECK(c.messages[3].payload == std::vector<uint8_t>{0, 7, 0, 0, 0, 77});
  CHECK(c.messages[4].header.type == kSetChunkSize);
  CHECK(r.chunk_size() == 4096);
}

TEST_CASE("chunk: malformed streams are refused with a reason, and stay refused") {
  auto refused = [](std::vector<uint8_t> b, const char* expect, size_t max = 1u << 20) {
    ChunkReader r(max);
    Collector c;
    auto res = r.feed(b.data(), b.size(), c);
    CHECK(res == ChunkReader::Result::Error);
    REQUIRE(r.error() != nullptr);
    CHECK(std::string(r.error()).find(expect) != std::string::npos);
    uint8_t more = 0x03;
    CHECK(r.feed(&more, 1, c) == ChunkReader::Result::Error);
  };
  refused({0x43, 0, 0, 0, 0, 0, 1, 8}, "no previous header");  // type 1 first
  refused({0xC3}, "no previous header");                      // type 3 first
  // A message over the reader's bound.
  refused({0x03, 0, 0, 0, 0x10, 0, 0, 8, 0, 0, 0, 0}, "larger", 1000);
  // Set Chunk Size 0.
  refused({0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0}, "Set Chunk Size");
  // A new message header while a message is incomplete on the same chunk stream.
  std::vector<uint8_t> b = {0x03, 0, 0, 0, 0, 0, 200, 8, 0, 0, 0, 0};
  b.insert(b.end(), 128, 0);
  b.insert(b.end(), {0x03, 0, 0, 0, 0, 0, 1, 8, 0, 0, 0, 0, 0});
  refused(b, "incomplete");
  // Too many chunk streams holding state.
  std::vector<uint8_t> many;
  for (uint32_t csid = 64; csid < 64 + ChunkReader::kMaxStreams + 1; ++csid)
    many.insert(many.end(), {0x00, uint8_t(csid - 64), 0, 0, 0, 0, 0, 1, 8, 0, 0, 0, 0, 0x55});
  refused(many, "too many chunk streams");
}

TEST_CASE("chunk: a sink can stop the reader") {
  ChunkWriter w;
  std::vector<uint8_t> b;
  uint8_t x = 1;
  w.write(b, 3, 20, 0, 0, &x, 1);
  w.write(b, 3, 20, 0, 0, &x, 1);
  ChunkReader r;
  Collector c;
  c.stop_after = 1;
  CHECK(r.feed(b.data(), b.size(), c) == ChunkReader::Result::Stopped);
  CHECK(c.messages.size() == 1);
}
