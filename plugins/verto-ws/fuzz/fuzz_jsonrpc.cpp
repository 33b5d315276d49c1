// The JSON-RPC layer on any bytes: framing, classification and the replies built from what it
// found must never throw or crash; a reply always serialises.
#include "credentials.hpp"
#include "jsonrpc.hpp"
#include "media_desc.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  verto::Frame f = verto::parse_frame(text);
  for (auto& m : f.messages) {
    nlohmann::json r = m.kind == verto::Message::Invalid ? verto::make_error(m.id, verto::kInvalidRequest, m.why)
                                                          : verto::make_result(m.id, m.params, "s");
    (void)r.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (m.kind == verto::Message::Request) {
      if (auto it = m.params.find("sdp"); it != m.params.end() && it->is_string()) {
        verto::MediaDesc md;
        std::string why;
        md.parse(it->get_ref<const std::string&>(), why);
      }
      if (auto it = m.params.find("login"); it != m.params.end() && it->is_string()) {
        (void)verto::valid_user(verto::user_of_login(it->get_ref<const std::string&>()));
      }
    }
  }
  return 0;
}
