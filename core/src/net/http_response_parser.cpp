#include "net/http_response_parser.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <junction/util/text.hpp>

using junction::util::ascii_iequals;

namespace junction {

namespace {

constexpr size_t kMaxChunkLine = 1024;  // size + extensions

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Field content: visible characters, SP, HT and obs-text; no CR, LF, NUL or other controls.
bool valid_field_value(std::string_view v) {
  for (unsigned char c : v)
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

HttpResponseParser::Result HttpResponseParser::fail(std::string why, bool limit) {
  error_ = std::move(why);
  too_large_ = limit;
  result_ = Result::kError;
  return result_;
}

HttpResponseParser::Result HttpResponseParser::feed(std::string_view data) {
  if (result_ != Result::kNeedMore) return result_;
  if (!data.empty()) any_input_ = true;
  size_t i = 0;
  while (i < data.size() && result_ == Result::kNeedMore) {
    if (phase_ == Phase::kBody || phase_ == Phase::kChunkData) {
      size_t used = 0;
      if (body_bytes(data.substr(i), used) != Result::kNeedMore) return result_;
      i += used;
      continue;
    }
    // Line-oriented phases: status line, headers, chunk sizes, chunk ends, trailers.
    size_t nl = data.find('\n', i);
    size_t take = (nl == std::string_view::npos ? data.size() : nl) - i;
    bool head = phase_ == Phase::kStatus || phase_ == Phase::kHeaders || phase_ == Phase::kTrailers;
    if (head) {
      head_bytes_ += take + (nl != std::string_view::npos);
      if (head_bytes_ > limits_.max_header_bytes)
        return fail(fmt::format("headers larger than {} bytes", limits_.max_header_bytes), true);
    } else if (line_.size() + take > kMaxChunkLine) {
      return fail("chunk size line too long");
    }
    line_.append(data.substr(i, take));
    if (nl == std::string_view::npos) break;
    i = nl + 1;
    std::string l = std::move(line_);
    line_.clear();
    if (!l.empty() && l.back() == '\r') l.pop_back();
    if (line(l) != Result::kNeedMore) return result_;
  }
  return result_;
}

HttpResponseParser::Result HttpResponseParser::line(std::string_view l) {
  switch (phase_) {
    case Phase::kStatus: {
      if (l.empty()) return result_;  // RFC 9112 2.2: an empty line before the status line is ignored
      // HTTP/1.x SP 3DIGIT [SP reason]
      if (l.size() < 12 || l.substr(0, 7) != "HTTP/1." || (l[7] != '0' && l[7] != '1') ||
          l[8] != ' ' || !std::isdigit(static_cast<unsigned char>(l[9])) ||
          !std::isdigit(static_cast<unsigned char>(l[10])) ||
          !std::isdigit(static_cast<unsigned char>(l[11])) || (l.size() > 12 && l[12] != ' '))
        return fail("bad status line");
      status_ = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
      if (status_ < 100 || status_ > 599) return fail(fmt::format("bad status code {}", status_));
      std::string_view reason = l.size() > 13 ? l.substr(13) : std::string_view();
      if (!valid_field_value(reason)) return fail("bad reason phrase");
      reason_ = reason;
      phase_ = Phase::kHeaders;
      return result_;
    }
    case Phase::kHeaders: {
      if (l.empty()) return end_of_head();
      if (l.front() == ' ' || l.front() == '\t') return fail("obsolete header line folding");
      size_t colon = l.find(':');
      if (colon == std::string_view::npos || colon == 0) return fail("header line without a name");
      std::string_view name = l.substr(0, colon);
      if (!std::all_of(name.begin(), name.end(), is_tchar)) return fail("bad header name");
      std::string_view value = trim(l.substr(colon + 1));
      if (!valid_field_value(value)) return fail("bad header value (control characters)");
      if (headers_.size() >= limits_.max_headers)
        return fail(fmt::format("more than {} headers", limits_.max_headers), true);
      headers_.emplace_back(std::string(name), std::string(value));
      return result_;
    }
    case Phase::kChunkSize: {
      uint64_t size = 0;
      size_t k = 0;
      for (; k < l.size() && std::isxdigit(static_cast<unsigned char>(l[k])); ++k) {
        if (k >= 15) return fail("chunk size too large");
        char c = static_cast<char>(std::tolower(static_cast<unsigned char>(l[k])));
        size = size * 16 + static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
      }
      if (k == 0) return fail("bad chunk size");
      std::string_view rest = trim(l.substr(k));
      if (!rest.empty() && rest.front() != ';') return fail("bad chunk size");
      if (!valid_field_value(rest)) return fail("bad chunk extension");
      if (size == 0) {
        phase_ = Phase::kTrailers;
        return result_;
      }
      if (!limits_.stream && size > limits_.max_body - std::min(body_.size(), limits_.max_body))
        return fail(fmt::format("response body larger than {} bytes", limits_.max_body), true);
      remaining_ = size;
      phase_ = Phase::kChunkData;
      return result_;
    }
    case Phase::kChunkDataEnd:
      if (!l.empty()) return fail("chunk data longer than its size");
      phase_ = Phase::kChunkSize;
      return result_;
    case Phase::kTrailers: {
      if (l.empty()) {
        phase_ = Phase::kDone;
        result_ = Result::kDone;
        return result_;
      }
      size_t colon = l.find(':');
      if (colon == std::string_view::npos || colon == 0 || !valid_field_value(l))
        return fail("bad trailer line");
      return result_;  // trailers are not kept
    }
    case Phase::kBody:
    case Phase::kChunkData:
    case Phase::kDone:
      break;
  }
  return result_;
}

HttpResponseParser::Result HttpResponseParser::end_of_head() {
  if (status_ < 200) {
    if (status_ == 101) return fail("unexpected 101 Switching Protocols");
    // An interim response (100 Continue, 103 Early Hints): the final one follows.
    status_ = 0;
    reason_.clear();
    headers_.clear();
    phase_ = Phase::kStatus;
    return result_;
  }
  auto done = [&] {
    phase_ = Phase::kDone;
    result_ = Result::kDone;
    return result_;
  };
  if (no_body_ || status_ == 204 || status_ == 304) return done();

  bool chunked = false, has_te = false;
  bool has_length = false;
  uint64_t length = 0;
  for (auto& [name, value] : headers_) {
    if (ascii_iequals(name, "Transfer-Encoding")) {
      has_te = true;
      std::string_view v = value;
      while (!v.empty()) {
        size_t comma = v.find(',');
        std::string_view coding = trim(v.substr(0, comma));
        v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
        if (coding.empty()) continue;
        if (!ascii_iequals(coding, "chunked"))
          return fail(fmt::format("unsupported transfer-encoding '{}'", std::string(coding.substr(0, 40))));
        if (chunked) return fail("chunked applied twice");
        chunked = true;
      }
    } else if (ascii_iequals(name, "Content-Length")) {
      std::string_view v = value;
      if (v.empty() || v.size() > 18 || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return fail("bad Content-Length");
      uint64_t n = 0;
      for (char c : v) n = n * 10 + static_cast<uint64_t>(c - '0');
      if (has_length && n != length) return fail("conflicting Content-Length headers");
      has_length = true;
      length = n;
    }
  }
  if (has_te) {
    // Transfer-Encoding overrides Content-Length (RFC 9112 6.3).
    if (!chunked) return fail("empty transfer-encoding");
    framing_ = Framing::kChunked;
    phase_ = Phase::kChunkSize;
    return result_;
  }
  if (has_length) {
    if (length > limits_.max_body && !limits_.stream)
      return fail(fmt::format("response body larger than {} bytes (Content-Length {})", limits_.max_body, length), true);
    if (length == 0) return done();
    framing_ = Framing::kLength;
    remaining_ = length;
    if (!limits_.stream) body_.reserve(static_cast<size_t>(length));
    phase_ = Phase::kBody;
    return result_;
  }
  framing_ = Framing::kClose;
  phase_ = Phase::kBody;
  return result_;
}

HttpResponseParser::Result HttpResponseParser::body_bytes(std::string_view data, size_t& used) {
  if (phase_ == Phase::kBody && framing_ == Framing::kClose) {
    if (!limits_.stream && data.size() > limits_.max_body - body_.size())
      return fail(fmt::format("response body larger than {} bytes", limits_.max_body), true);
    body_.append(data);
    used = data.size();
    return result_;
  }
  size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, data.size()));
  body_.append(data.substr(0, take));
  remaining_ -= take;
  used = take;
  if (remaining_ == 0) {
    if (phase_ == Phase::kChunkData) {
      phase_ = Phase::kChunkDataEnd;
    } else {
      phase_ = Phase::kDone;
      result_ = Result::kDone;
    }
  }
  return result_;
}

HttpResponseParser::Result HttpResponseParser::finish() {
  if (result_ != Result::kNeedMore) return result_;
  if (phase_ == Phase::kBody && framing_ == Framing::kClose) {
    phase_ = Phase::kDone;
    result_ = Result::kDone;
    return result_;
  }
  if (!any_input_) return fail("connection closed without a response");
  return fail("connection closed before the end of the response");
}

}  // namespace junction
