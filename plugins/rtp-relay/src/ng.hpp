// rtpengine "ng" control protocol framing: "<cookie> <bencoded dictionary>" in one UDP datagram,
// the reply echoes the cookie. Pure codec: no I/O, unit-tested and fuzzed on its own.
#pragma once

#include <junction/proto/bencode.hpp>

#include <string>
#include <string_view>

namespace rtp_relay::ng {

namespace bencode = junction::proto::bencode;

constexpr size_t kMaxCookie = 128;

struct Message {
  std::string cookie;
  bencode::Value dict;
};

struct ParseResult {
  bool ok = false;
  bool have_cookie = false;  // a reply can be sent (with error) when the cookie was readable
  Message msg;
  std::string error;
};

inline ParseResult parse(std::string_view dgram) {
  ParseResult r;
  size_t sp = dgram.find(' ');
  if (sp == std::string_view::npos || sp == 0 || sp > kMaxCookie) {
    r.error = "no cookie";
    return r;
  }
  for (size_t i = 0; i < sp; ++i) {
    unsigned char c = static_cast<unsigned char>(dgram[i]);
    if (c < 0x21 || c > 0x7e) {
      r.error = "cookie is not printable";
      return r;
    }
  }
  r.msg.cookie = std::string(dgram.substr(0, sp));
  r.have_cookie = true;
  bencode::Limits lim;
  lim.max_depth = 8;
  lim.max_items = 4096;
  auto pr = bencode::parse_all(dgram.substr(sp + 1), lim);
  if (!pr) {
    r.error = "bad bencode at offset " + std::to_string(pr.consumed) + ": " + pr.error;
    return r;
  }
  if (!pr.value->is_dict()) {
    r.error = "message is not a dictionary";
    return r;
  }
  r.msg.dict = std::move(*pr.value);
  r.ok = true;
  return r;
}

inline std::string format(std::string_view cookie, const bencode::Value& dict) {
  std::string out(cookie);
  out += ' ';
  bencode::serialize_to(dict, out);
  return out;
}

inline bencode::Value error_reply(std::string_view reason) {
  bencode::Value v = bencode::Value::dict();
  v.set("result", "error");
  v.set("error-reason", reason);
  return v;
}

// True when `list_key` (a list of strings) contains `item`, or the dict's "flags" list does.
inline bool has_item(const bencode::Value& dict, std::string_view list_key, std::string_view item) {
  const bencode::Value* l = dict.find(list_key);
  if (!l) return false;
  if (l->is_str()) return l->as_str() == item;
  if (!l->is_list()) return false;
  for (auto& v : l->as_list())
    if (v.is_str() && v.as_str() == item) return true;
  return false;
}

}  // namespace rtp_relay::ng
