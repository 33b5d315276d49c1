// HTTP-FLV pull framing (flv_pull.hpp).
#include "flv_pull.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>

namespace intercom {

namespace {

constexpr size_t kMaxHead = 8192;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

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

std::string HttpFlvPull::request(std::string_view host_port, std::string_view path) {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: " + std::string(host_port) +
         "\r\nUser-Agent: junction-intercom-json\r\nAccept: */*\r\nConnection: close\r\n\r\n";
}

bool HttpFlvPull::fail(std::string why) {
  if (error_.empty()) error_ = std::move(why);
  state_ = State::kDone;
  return false;
}

bool HttpFlvPull::headers(std::string_view text) {
  // "HTTP/1.1 200 OK"
  size_t eol = text.find("\r\n");
  std::string_view status = text.substr(0, eol);
  if (status.substr(0, 5) != "HTTP/" || status.find(' ') == std::string_view::npos)
    return fail("not an HTTP response");
  std::string_view code = status.substr(status.find(' ') + 1, 3);
  if (code != "200") return fail("the stream server answered " + std::string(status.substr(status.find(' ') + 1)));
  bool chunked = false;
  for (size_t pos = eol + 2; pos < text.size();) {
    size_t end = text.find("\r\n", pos);
    if (end == std::string_view::npos) end = text.size();
    std::string line = lower(text.substr(pos, end - pos));
    if (line.rfind("transfer-encoding:", 0) == 0 && line.find("chunked") != std::string::npos) chunked = true;
    pos = end + 2;
  }
  state_ = chunked ? State::kChunkSize : State::kBody;
  head_.clear();
  return true;
}

bool HttpFlvPull::feed(const uint8_t* p, size_t n, junction::media::FrameSink sink) {
  while (n > 0) {
    switch (state_) {
      case State::kDone: return false;
      case State::kHeaders: {
        // Bytes up to the blank line; the rest of this piece is body.
        size_t old = head_.size();
        size_t take = std::min(n, kMaxHead + 4 - old);
        head_.append(reinterpret_cast<const char*>(p), take);
        size_t end = head_.find("\r\n\r\n", old >= 3 ? old - 3 : 0);
        if (end == std::string::npos) {
          if (head_.size() > kMaxHead) return fail("response headers over 8 KiB");
          p += take, n -= take;
          continue;
        }
        size_t used = end + 4 - old;
        std::string text = head_.substr(0, end);
        if (!headers(text)) return false;
        p += used, n -= used;
        continue;
      }
      case State::kBody:
        if (!body(p, n, sink)) return false;
        return true;
      case State::kChunkSize: {
        // hex size [; extensions] CRLF
        const uint8_t* nl = static_cast<const uint8_t*>(std::memchr(p, '\n', n));
        size_t take = nl ? static_cast<size_t>(nl - p) + 1 : n;
        head_.append(reinterpret_cast<const char*>(p), take);
        p += take, n -= take;
        if (head_.size() > 256) return fail("chunk size line over 256 bytes");
        if (!nl) continue;
        uint64_t size = 0;
        size_t digits = 0;
        for (char c : head_) {
          int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
          if (v < 0) break;
          if (++digits > 15) return fail("chunk size too large");
          size = size << 4 | static_cast<uint64_t>(v);
        }
        head_.clear();
        if (!digits) return fail("bad chunk size line");
        if (size == 0) return fail("the stream server ended the stream");
        chunk_left_ = size;
        state_ = State::kChunkData;
        continue;
      }
      case State::kChunkData: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(chunk_left_, n));
        if (!body(p, take, sink)) return false;
        p += take, n -= take, chunk_left_ -= take;
        if (chunk_left_ == 0) state_ = State::kChunkCrlf, crlf_left_ = 2;
        continue;
      }
      case State::kChunkCrlf: {
        uint8_t want = crlf_left_ == 2 ? '\r' : '\n';
        if (*p != want) return fail("chunk not followed by CRLF");
        ++p, --n;
        if (--crlf_left_ == 0) state_ = State::kChunkSize;
        continue;
      }
    }
  }
  return !failed();
}

bool HttpFlvPull::body(const uint8_t* p, size_t n, junction::media::FrameSink& sink) {
  if (reader_.feed(p, n, sink)) return true;
  return fail(std::string("bad FLV: ") + junction::rtmp::flv::to_string(reader_.error()) + ": " + reader_.error_detail());
}

}  // namespace intercom
