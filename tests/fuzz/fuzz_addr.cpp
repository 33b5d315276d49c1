// parse_addr on arbitrary text: accepted addresses format back to text that parses to the same.
#include "bus/addr.hpp"

#include <cstdlib>
#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  jn_addr a{};
  if (!junction::parse_addr(text, a)) return 0;
  jn_addr b{};
  if (!junction::parse_addr(junction::format_addr(a), b)) std::abort();
  if (std::memcmp(&a, &b, sizeof a) != 0) std::abort();
  return 0;
}
