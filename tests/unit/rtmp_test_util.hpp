// Helpers for the sdk/rtmp unit tests: a ChunkReader sink that keeps copies of the messages, and
// feeding bytes in random splits.
#pragma once

#include <junction/rtmp/chunk.hpp>

#include <cstdint>
#include <random>
#include <vector>

namespace rtmp_test {

struct OwnedMessage {
  uint32_t csid = 0;
  junction::rtmp::MessageHeader header;
  std::vector<uint8_t> payload;
};

struct Collector final : junction::rtmp::ChunkReader::Sink {
  std::vector<OwnedMessage> messages;
  size_t stop_after = SIZE_MAX;
  bool on_message(const junction::rtmp::Message& m) override {
    messages.push_back({m.csid, m.header, std::vector<uint8_t>(m.payload, m.payload + m.header.length)});
    return messages.size() < stop_after;
  }
};

// Feeds bytes in pieces of 1..max_piece bytes (random); stops at the first non-Ok result.
inline junction::rtmp::ChunkReader::Result feed_random(junction::rtmp::ChunkReader& r,
                                                       junction::rtmp::ChunkReader::Sink& sink,
                                                       const std::vector<uint8_t>& bytes, std::mt19937& rng,
                                                       size_t max_piece = 700) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t n = std::uniform_int_distribution<size_t>(1, max_piece)(rng);
    if (n > bytes.size() - pos) n = bytes.size() - pos;
    auto res = r.feed(bytes.data() + pos, n, sink);
    if (res != junction::rtmp::ChunkReader::Result::Ok) return res;
    pos += n;
  }
  return junction::rtmp::ChunkReader::Result::Ok;
}

}  // namespace rtmp_test
