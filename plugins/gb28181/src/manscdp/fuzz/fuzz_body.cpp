// fuzz_gb28181_body: decode (charset, pre-scrub, pugixml, limits) of any bytes.
#include "body.hpp"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view raw(reinterpret_cast<const char*>(data), size);
  junction::gb::Body body;
  std::string error;
  bool ok = body.decode(raw, "Application/MANSCDP+xml", error);
  if (ok == error.empty() && !ok) abort();  // a refusal always says why
  return 0;
}
