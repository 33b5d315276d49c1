// HTTP-FLV pull: the URL, the status and the body into the FLV reader (flv_pull.hpp).
#include "flv_pull.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>

namespace intercom {

namespace {

bool ipv4_literal(std::string_view h) {
  int dots = 0, digits = 0;
  for (char c : h) {
    if (c == '.') {
      if (!digits) return false;
      ++dots, digits = 0;
    } else if (c >= '0' && c <= '9') {
      if (++digits > 3) return false;
    } else {
      return false;
    }
  }
  return dots == 3 && digits;
}

}  // namespace

bool parse_pull_url(std::string_view url, std::string& host_port, std::string& path, std::string& why) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    why = "not an http:// URL";
    return false;
  }
  std::string_view rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string_view hp = rest.substr(0, slash);
  path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  size_t colon = hp.rfind(':');
  std::string_view host = hp.substr(0, colon);
  int port = 80;
  if (colon != std::string_view::npos) {
    std::string p(hp.substr(colon + 1));
    port = p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos ? 0 : std::atoi(p.c_str());
  }
  if (!ipv4_literal(host) || port <= 0 || port > 65535) {
    why = "the host must be an IPv4 address with an optional port";
    return false;
  }
  for (char c : path)
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      why = "the path has a control character or a space";
      return false;
    }
  host_port = std::string(host) + ":" + std::to_string(port);
  return true;
}

std::string pull_url_for(std::string_view pattern, std::string_view id) {
  std::string out(pattern);
  size_t at = out.find("{id}");
  if (at == std::string::npos) return out + std::string(id);
  return out.replace(at, 4, id);
}

bool FlvPull::fail(std::string why) {
  if (error_.empty()) error_ = std::move(why);
  return false;
}

bool FlvPull::head(int status) {
  if (failed()) return false;
  if (status != 200) return fail("the stream server answered " + std::to_string(status));
  head_ok_ = true;
  return true;
}

bool FlvPull::feed(const uint8_t* p, size_t n, junction::media::FrameSink sink) {
  if (failed()) return false;
  if (!head_ok_) return fail("body before the response head");
  if (n == 0 || reader_.feed(p, n, sink)) return true;
  return fail(std::string("bad FLV: ") + junction::rtmp::flv::to_string(reader_.error()) + ": " + reader_.error_detail());
}

}  // namespace intercom
