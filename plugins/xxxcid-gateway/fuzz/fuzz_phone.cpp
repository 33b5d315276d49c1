// The phone order parser on arbitrary text: accepted orders serialise to JSON that parses back
// to the same order.
#include "../src/codec.hpp"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto o = xxxcid::parse_order(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!o) return 0;
  auto back = xxxcid::parse_order(xxxcid::serialise_order(*o));
  if (!back || !(*back == *o)) std::abort();
  return 0;
}
