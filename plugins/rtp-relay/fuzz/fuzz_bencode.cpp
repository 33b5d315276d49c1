// Fuzz: ng framing + bencode parser; a parsed value must serialise and re-parse to itself.
#include "ng.hpp"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto r = rtp_relay::ng::parse(in);
  if (r.ok) {
    std::string out = rtp_relay::ng::format(r.msg.cookie, r.msg.dict);
    auto again = rtp_relay::ng::parse(out);
    if (!again.ok || !(again.msg.dict == r.msg.dict)) abort();
    (void)r.msg.dict.get_str("command");
    (void)r.msg.dict.get_int("limit");
    (void)rtp_relay::ng::has_item(r.msg.dict, "flags", "trust-address");
  }
  auto p = junction::proto::bencode::parse_prefix(in);
  if (p) {
    std::string s = junction::proto::bencode::serialize(*p.value);
    auto q = junction::proto::bencode::parse_all(s);
    if (!q || !(*q.value == *p.value)) abort();
  }
  return 0;
}
