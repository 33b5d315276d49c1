// The LEN16 (RFC 4571) framer, as a media loop uses it: every way of cutting a stream into reads
// yields the same frames and oversize reports, and a frame wholly inside one read is handed out as
// a view of that read (no copy before the loop copies it into its pool buffer).
#include "host/framer.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using junction::StreamFramer;

namespace {

std::string len16(const std::string& f) {
  std::string w;
  w.push_back(static_cast<char>(f.size() >> 8));
  w.push_back(static_cast<char>(f.size() & 0xff));
  return w + f;
}

struct Out {
  std::vector<std::string> frames;
  std::vector<size_t> oversize;
  size_t views = 0;  // frames that pointed into the chunk being fed
  bool operator==(const Out& o) const { return frames == o.frames && oversize == o.oversize; }
};

// Feeds `wire` in chunks of the given sizes (the last chunk takes the rest).
Out feed(const std::string& wire, const std::vector<size_t>& cuts, uint32_t max_frame) {
  StreamFramer f(JN_FRAME_LEN16, 0, max_frame);
  Out out;
  size_t pos = 0;
  for (size_t i = 0; pos < wire.size(); ++i) {
    size_t n = i < cuts.size() ? std::min(cuts[i], wire.size() - pos) : wire.size() - pos;
    std::string chunk = wire.substr(pos, n);  // its own storage: a view must point into it
    f.feed(chunk.data(), chunk.size(),
           [&](std::string_view fr) {
             out.frames.emplace_back(fr);
             if (fr.data() >= chunk.data() && fr.data() + fr.size() <= chunk.data() + chunk.size()) ++out.views;
             return true;
           },
           [&](size_t len) {
             out.oversize.push_back(len);
             return true;
           });
    pos += n;
  }
  CHECK(f.buffered() == 0);
  return out;
}

}  // namespace

TEST_CASE("LEN16: every cut of the stream gives the same frames; whole frames are views of the read") {
  const std::string wire = len16("") + len16("a") + len16("hello") + len16(std::string(40, 'x')) + len16("medium-frame") +
                           len16("z") + len16(std::string(30, 'q')) + len16(std::string(20, 'm'));
  Out whole = feed(wire, {wire.size()}, 20);  // 40 and 30 bytes are over max_frame
  CHECK(whole.frames == std::vector<std::string>{"", "a", "hello", "medium-frame", "z", std::string(20, 'm')});
  CHECK(whole.oversize == std::vector<size_t>{40, 30});
  CHECK(whole.views == whole.frames.size());  // one read: no frame was copied
  // Two reads cut at every offset, and fixed-size reads of every size: the same result.
  for (size_t cut = 0; cut <= wire.size(); ++cut) {
    Out o = feed(wire, {cut}, 20);
    CHECK_MESSAGE(o == whole, "cut at " << cut);
  }
  for (size_t step = 1; step <= wire.size(); ++step) {
    std::vector<size_t> cuts(wire.size() / step + 1, step);
    Out o = feed(wire, cuts, 20);
    CHECK_MESSAGE(o == whole, "reads of " << step);
  }
}

TEST_CASE("LEN16: a frame split across reads is reassembled; the frames after it in that read are views") {
  const std::string wire = len16("first-frame") + len16("second") + len16("third");
  Out o = feed(wire, {5}, 100);  // "first-frame" is split; "second" and "third" lie in the 2nd read
  CHECK(o.frames == std::vector<std::string>{"first-frame", "second", "third"});
  CHECK(o.views == 2);
}

TEST_CASE("LEN16: a stop from the frame callback ends the feed") {
  const std::string wire = len16("a") + len16("b") + len16("c");
  StreamFramer f(JN_FRAME_LEN16, 0, 100);
  int n = 0;
  f.feed(wire.data(), wire.size(), [&](std::string_view) { return ++n < 2; }, [](size_t) { return true; });
  CHECK(n == 2);
}

TEST_CASE("LEN16: random streams, random reads, against a reference parse of the whole stream") {
  uint64_t seed = 0x9e3779b97f4a7c15ull;  // fixed: the same streams every run
  auto rnd = [&](uint64_t n) {
    seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
    return seed % n;
  };
  for (int round = 0; round < 300; ++round) {
    const uint32_t max_frame = 1 + static_cast<uint32_t>(rnd(300));
    std::string wire;
    Out want;
    for (int k = 0, frames = static_cast<int>(rnd(20)); k < frames; ++k) {
      std::string f(rnd(400), static_cast<char>('a' + rnd(26)));
      wire += len16(f);
      if (f.size() > max_frame) want.oversize.push_back(f.size());
      else want.frames.push_back(f);
    }
    std::vector<size_t> cuts;
    for (size_t left = wire.size(); left > 0;) {
      size_t n = 1 + rnd(std::min<size_t>(left, 600));
      cuts.push_back(n);
      left -= n;
    }
    Out got = feed(wire, cuts, max_frame);
    CHECK_MESSAGE(got == want, "round " << round);
  }
}
