#include "host/port_ranges.hpp"

namespace junction {

PortRanges::PortRanges(std::vector<PortRangeConf> ranges) {
  for (auto& c : ranges) ranges_.push_back(Range{std::move(c)});
}

PortRanges::Range* PortRanges::find(std::string_view name) {
  for (Range& r : ranges_)
    if (r.conf.name == name) return &r;
  return nullptr;
}

}  // namespace junction
