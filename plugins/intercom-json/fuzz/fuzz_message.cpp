// Fuzzes what a device controls: one frame through the message parser, then its src/dest
// through the endpoint reader and the section-5 stream rules for every server and peer type,
// and the same bytes as a join_family token. Invariants: no crash, encoded output never holds a
// NUL (it would split the \0-separated stream), the rules are idempotent on their own output.
#include "protocol.hpp"
#include "token.hpp"

#include <cstdlib>
#include <string_view>

using namespace intercom;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  Message m;
  Error e;
  if (!parse_message(in, m, e)) {
    if (encode_error(e).find('\0') != std::string::npos) std::abort();
  } else {
    Network n;
    for (const char* key : {"src", "dest"}) {
      Endpoint ep;
      std::string why;
      if (!m.values.is_object() || !read_endpoint(m.values.value(key, nlohmann::json()), ep, why)) continue;
      for (Server s : {Server::Box, Server::Center, Server::Caller}) {
        Endpoint neutral = neutral_endpoint(ep, s, n);
        if (neutral_endpoint(neutral, s, n).audio != neutral.audio) std::abort();
        for (int t = 1; t <= 5; ++t) {
          Endpoint v = view_endpoint(neutral, s, t, n);
          if (encode("x", "call_req", write_endpoint(v)).find('\0') != std::string::npos) std::abort();
        }
      }
    }
    if (encode(m.id, m.name, m.values).find('\0') != std::string::npos) std::abort();
  }
  TokenClaims c;
  token_verify("0123456789abcdef", in, 0, c);
  std::string p = param_escape(in);
  if (param_get("k=" + p, "k") != in) std::abort();
  return 0;
}
