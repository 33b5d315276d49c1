// The door codec on arbitrary bytes: accepted packets serialise back to bytes that parse to the
// same packet (NUL padding is canonical, so the bytes themselves may differ only there).
#include "../src/codec.hpp"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto p = xxxcid::parse(data, size);
  if (!p) return 0;
  std::string out = xxxcid::serialise(*p);
  if (out.size() != size) std::abort();
  auto q = xxxcid::parse(reinterpret_cast<const uint8_t*>(out.data()), out.size());
  if (!q || !(*q == *p)) std::abort();
  return 0;
}
