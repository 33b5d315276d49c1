// The core's named port ranges ([ports.NAME] min/max in junction.toml): every media plugin takes
// its RTP/RTCP pairs and media listeners from them through the port_bind service, so ranges are
// configured once per server instead of per plugin.
//
// No table of ports in use: the allocator walks a next-fit cursor through the range and lets the
// kernel say which ports are taken (a bind that fails with EADDRINUSE moves on). Ports freed
// behind the cursor are found again when it wraps. Sockets may be closed on any thread (media
// loops), and nothing needs to be told. Control thread only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace junction {

struct PortRangeConf {
  std::string name;
  uint16_t min = 0, max = 0;  // inclusive
};

class PortRanges {
 public:
  struct Range {
    PortRangeConf conf;
    uint32_t cursor = 0;          // offset of the next port to try
    uint64_t allocated = 0;       // successful binds (a pair counts once)
    uint64_t exhausted = 0;       // requests that found no free port
  };
  explicit PortRanges(std::vector<PortRangeConf> ranges);
  Range* find(std::string_view name);
  const std::vector<Range>& all() const { return ranges_; }

  // Tries ports of r in next-fit order until try_port(port) returns true (bound) or false with
  // *busy set (taken: keep looking), or false without busy (a hard error: stop). pair: only even
  // ports below max are tried (the next one is RTCP). Returns the port bound, or 0.
  template <typename TryPort>
  uint32_t allocate(Range& r, bool pair, TryPort&& try_port) {
    const uint32_t size = static_cast<uint32_t>(r.conf.max) - r.conf.min + 1;
    for (uint32_t n = 0; n < size; ++n) {
      uint32_t off = (r.cursor + n) % size;
      uint32_t port = r.conf.min + off;
      if (pair && (port % 2 != 0 || port + 1 > r.conf.max)) continue;
      bool busy = false;
      if (try_port(port, &busy)) {
        r.cursor = (off + (pair ? 2 : 1)) % size;
        ++r.allocated;
        return port;
      }
      if (!busy) return 0;
    }
    ++r.exhausted;
    return 0;
  }

 private:
  std::vector<Range> ranges_;
};

}  // namespace junction
