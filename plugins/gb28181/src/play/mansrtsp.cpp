#include "play/mansrtsp.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <junction/util/text.hpp>

using junction::util::ascii_iequals;

namespace gb::play {

static constexpr size_t kMaxBody = 4096;

std::string_view rtsp_method_name(RtspMethod m) {
  switch (m) {
    case RtspMethod::Play: return "PLAY";
    case RtspMethod::Pause: return "PAUSE";
    case RtspMethod::Teardown: return "TEARDOWN";
  }
  return "PLAY";
}

static std::string num(double v) {
  // Shortest plain form: 2 -> "2.0" would also do, devices parse both; keep 3 decimals at most.
  char b[32];
  std::snprintf(b, sizeof b, "%.3f", v);
  std::string s(b);
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s += '0';
  return s;
}

static bool valid_scale(double v) { return std::isfinite(v) && v != 0 && std::fabs(v) <= 32; }

std::optional<std::string> build_rtsp(const RtspRequest& r, std::string& error) {
  std::string s = std::string(rtsp_method_name(r.method)) + " MANSRTSP/1.0\r\nCSeq: " + std::to_string(r.cseq) + "\r\n";
  if (r.method == RtspMethod::Play) {
    if (r.scale) {
      if (!valid_scale(*r.scale)) {
        error = "scale must be non-zero and within +-32";
        return std::nullopt;
      }
      s += "Scale: " + num(*r.scale) + "\r\n";
    }
    if (r.range_given || r.range_start || r.range_end) {
      if ((r.range_start && (!std::isfinite(*r.range_start) || *r.range_start < 0)) ||
          (r.range_end && (!std::isfinite(*r.range_end) || *r.range_end < 0)) ||
          (r.range_start && r.range_end && *r.range_end < *r.range_start)) {
        error = "range must be npt seconds >= 0 with start <= end";
        return std::nullopt;
      }
      s += "Range: npt=" + (r.range_start ? num(*r.range_start) : std::string("now")) + "-" +
           (r.range_end ? num(*r.range_end) : std::string()) + "\r\n";
    }
  } else if (r.method == RtspMethod::Pause) {
    s += "PauseTime: " + (r.pause_time.empty() ? std::string("now") : r.pause_time) + "\r\n";
  }
  return s;
}

namespace {
struct Lines {
  std::string_view rest;
  bool next(std::string_view& line) {
    if (rest.empty()) return false;
    size_t nl = rest.find('\n');
    line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return true;
  }
};
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
bool parse_u32(std::string_view s, uint32_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}
bool parse_double(std::string_view s, double& out) {
  // from_chars for double: no locale, no allocation
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty() && std::isfinite(out);
}
// Header "Name: value" split; false for a line without ':'.
bool header(std::string_view line, std::string_view& name, std::string_view& value) {
  size_t c = line.find(':');
  if (c == std::string_view::npos) return false;
  name = trim(line.substr(0, c));
  value = trim(line.substr(c + 1));
  return true;
}
}  // namespace

std::optional<RtspRequest> parse_rtsp_request(std::string_view body, std::string& error) {
  if (body.size() > kMaxBody) {
    error = "MANSRTSP body larger than " + std::to_string(kMaxBody) + " bytes";
    return std::nullopt;
  }
  Lines ls{body};
  std::string_view line;
  if (!ls.next(line)) {
    error = "empty MANSRTSP body";
    return std::nullopt;
  }
  size_t sp = line.find(' ');
  std::string_view method = line.substr(0, sp);
  std::string_view version = sp == std::string_view::npos ? std::string_view() : trim(line.substr(sp + 1));
  if (!ascii_iequals(version, "MANSRTSP/1.0") && !ascii_iequals(version, "RTSP/1.0")) {
    error = "MANSRTSP request line without MANSRTSP/1.0: " + std::string(line.substr(0, 64));
    return std::nullopt;
  }
  RtspRequest r;
  if (ascii_iequals(method, "PLAY")) r.method = RtspMethod::Play;
  else if (ascii_iequals(method, "PAUSE")) r.method = RtspMethod::Pause;
  else if (ascii_iequals(method, "TEARDOWN")) r.method = RtspMethod::Teardown;
  else {
    error = "MANSRTSP method not supported: " + std::string(method.substr(0, 32));
    return std::nullopt;
  }
  bool have_cseq = false;
  while (ls.next(line)) {
    if (trim(line).empty()) break;
    std::string_view n, v;
    if (!header(line, n, v)) {
      error = "MANSRTSP header without ':'";
      return std::nullopt;
    }
    if (ascii_iequals(n, "CSeq")) {
      if (!parse_u32(v, r.cseq)) {
        error = "MANSRTSP CSeq is not a number";
        return std::nullopt;
      }
      have_cseq = true;
    } else if (ascii_iequals(n, "Scale")) {
      double d = 0;
      if (!parse_double(v, d) || !valid_scale(d)) {
        error = "MANSRTSP Scale is not a non-zero number within +-32";
        return std::nullopt;
      }
      r.scale = d;
    } else if (ascii_iequals(n, "Range")) {
      // npt=<start|now>-[end]
      if (v.size() < 4 || !ascii_iequals(v.substr(0, 4), "npt=")) {
        error = "MANSRTSP Range is not npt=";
        return std::nullopt;
      }
      std::string_view spec = v.substr(4);
      size_t dash = spec.find('-');
      if (dash == std::string_view::npos) {
        error = "MANSRTSP Range without '-'";
        return std::nullopt;
      }
      std::string_view a = trim(spec.substr(0, dash)), b = trim(spec.substr(dash + 1));
      r.range_given = true;
      double d = 0;
      if (!a.empty() && !ascii_iequals(a, "now")) {
        if (!parse_double(a, d) || d < 0) {
          error = "MANSRTSP Range start is not npt seconds";
          return std::nullopt;
        }
        r.range_start = d;
      }
      if (!b.empty()) {
        if (!parse_double(b, d) || d < 0) {
          error = "MANSRTSP Range end is not npt seconds";
          return std::nullopt;
        }
        r.range_end = d;
      }
    } else if (ascii_iequals(n, "PauseTime")) {
      r.pause_time = std::string(v.substr(0, 32));
    }
  }
  if (!have_cseq) {
    error = "MANSRTSP request without CSeq";
    return std::nullopt;
  }
  return r;
}

std::optional<RtspResponse> parse_rtsp_response(std::string_view body, std::string& error) {
  if (body.size() > kMaxBody) {
    error = "MANSRTSP body larger than " + std::to_string(kMaxBody) + " bytes";
    return std::nullopt;
  }
  Lines ls{body};
  std::string_view line;
  if (!ls.next(line)) {
    error = "empty MANSRTSP response";
    return std::nullopt;
  }
  // "MANSRTSP/1.0 200 OK"
  size_t sp = line.find(' ');
  if (sp == std::string_view::npos || (!ascii_iequals(line.substr(0, sp), "MANSRTSP/1.0") && !ascii_iequals(line.substr(0, sp), "RTSP/1.0"))) {
    error = "MANSRTSP status line expected";
    return std::nullopt;
  }
  std::string_view rest = line.substr(sp + 1);
  size_t sp2 = rest.find(' ');
  uint32_t code = 0;
  if (!parse_u32(rest.substr(0, sp2), code) || code < 100 || code > 699) {
    error = "MANSRTSP status code is not 100..699";
    return std::nullopt;
  }
  RtspResponse r;
  r.status = static_cast<int>(code);
  if (sp2 != std::string_view::npos) r.reason = std::string(trim(rest.substr(sp2 + 1)).substr(0, 64));
  while (ls.next(line)) {
    if (trim(line).empty()) break;
    std::string_view n, v;
    if (!header(line, n, v)) continue;  // lenient: devices add odd lines to answers
    if (ascii_iequals(n, "CSeq")) parse_u32(v, r.cseq);
    else if (ascii_iequals(n, "RTP-Info")) r.rtp_info = std::string(v.substr(0, 256));
  }
  return r;
}

std::string build_rtsp_response(int status, std::string_view reason, uint32_t cseq) {
  return "MANSRTSP/1.0 " + std::to_string(status) + " " + std::string(reason) + "\r\nCSeq: " + std::to_string(cseq) + "\r\n";
}

}  // namespace gb::play
