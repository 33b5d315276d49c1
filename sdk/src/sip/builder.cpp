#include <junction/sip/builder.hpp>

#include <junction/util/random.hpp>

#include <charconv>
#include <cstring>

namespace junction::sip {

namespace {

// Appends v with CR / LF replaced by spaces: no value can end a header early.
void append_safe(std::string& out, std::string_view v) {
  size_t start = out.size();
  out.append(v);
  // memchr first: values almost never hold a line break, and it scans 32 bytes at a time
  if (!std::memchr(v.data(), '\r', v.size()) && !std::memchr(v.data(), '\n', v.size())) return;
  for (size_t i = start; i < out.size(); ++i)
    if (out[i] == '\r' || out[i] == '\n') out[i] = ' ';
}

void append_int(std::string& out, int64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, size_t(r.ptr - buf));
}

}  // namespace

std::string_view reason_phrase(int code) {
  switch (code) {
    case 100: return "Trying";
    case 180: return "Ringing";
    case 181: return "Call Is Being Forwarded";
    case 182: return "Queued";
    case 183: return "Session Progress";
    case 200: return "OK";
    case 202: return "Accepted";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Moved Temporarily";
    case 305: return "Use Proxy";
    case 380: return "Alternative Service";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 410: return "Gone";
    case 413: return "Request Entity Too Large";
    case 414: return "Request-URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Unsupported URI Scheme";
    case 420: return "Bad Extension";
    case 421: return "Extension Required";
    case 423: return "Interval Too Brief";
    case 480: return "Temporarily Unavailable";
    case 481: return "Call/Transaction Does Not Exist";
    case 482: return "Loop Detected";
    case 483: return "Too Many Hops";
    case 484: return "Address Incomplete";
    case 485: return "Ambiguous";
    case 486: return "Busy Here";
    case 487: return "Request Terminated";
    case 488: return "Not Acceptable Here";
    case 489: return "Bad Event";
    case 491: return "Request Pending";
    case 493: return "Undecipherable";
    case 500: return "Server Internal Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Server Time-out";
    case 505: return "Version Not Supported";
    case 513: return "Message Too Large";
    case 600: return "Busy Everywhere";
    case 603: return "Decline";
    case 604: return "Does Not Exist Anywhere";
    case 606: return "Not Acceptable";
    default: return "Unknown";
  }
}

Writer& Writer::request_line(std::string_view method, std::string_view uri) {
  append_safe(out_, method);
  out_ += ' ';
  append_safe(out_, uri);
  out_.append(" SIP/2.0\r\n");
  return *this;
}

Writer& Writer::status_line(int code, std::string_view reason) {
  if (code < 100 || code > 699) code = 500;
  out_.append("SIP/2.0 ");
  append_int(out_, code);
  out_ += ' ';
  append_safe(out_, reason.empty() ? reason_phrase(code) : reason);
  out_.append("\r\n");
  return *this;
}

Writer& Writer::header(std::string_view name, std::string_view value) {
  append_safe(out_, name);
  out_.append(": ");
  append_safe(out_, value);
  out_.append("\r\n");
  return *this;
}

Writer& Writer::header(std::string_view name, int64_t value) {
  append_safe(out_, name);
  out_.append(": ");
  append_int(out_, value);
  out_.append("\r\n");
  return *this;
}

Writer& Writer::via(std::string_view transport, std::string_view host, uint16_t port, std::string_view branch,
                    bool rport) {
  out_.append("Via: SIP/2.0/");
  append_safe(out_, transport);
  out_ += ' ';
  bool v6 = host.find(':') != std::string_view::npos && (host.empty() || host[0] != '[');
  if (v6) out_ += '[';
  append_safe(out_, host);
  if (v6) out_ += ']';
  if (port) {
    out_ += ':';
    append_int(out_, port);
  }
  out_.append(";branch=");
  append_safe(out_, branch);
  if (rport) out_.append(";rport");
  out_.append("\r\n");
  return *this;
}

Writer& Writer::name_addr(std::string_view name, std::string_view display, std::string_view uri, std::string_view tag) {
  append_safe(out_, name);
  out_.append(": ");
  if (!display.empty()) {
    out_ += '"';
    for (char c : display) {
      if (c == '\r' || c == '\n') c = ' ';
      if (c == '"' || c == '\\') out_ += '\\';
      out_ += c;
    }
    out_.append("\" ");
  }
  out_ += '<';
  append_safe(out_, uri);
  out_ += '>';
  if (!tag.empty()) {
    out_.append(";tag=");
    append_safe(out_, tag);
  }
  out_.append("\r\n");
  return *this;
}

std::string& Writer::finish(std::string_view body, std::string_view content_type) {
  if (!body.empty() && !content_type.empty()) header("Content-Type", content_type);
  out_.append("Content-Length: ");
  append_int(out_, int64_t(body.size()));
  out_.append("\r\n\r\n");
  out_.append(body);
  return out_;
}

namespace {

// "Via: <top value with received/rport set>[, the header's other values]".
void write_top_via(std::string& o, std::string_view value, std::string_view ip, uint16_t port) {
  std::string_view rest = value, first;
  next_value(rest, first);
  Via v;
  if (!parse_via(first, v)) {  // parse() checked it; keep it as it was if not
    o.append("Via: ");
    append_safe(o, value);
    o.append("\r\n");
    return;
  }
  std::string_view head = first.substr(0, size_t(v.params.raw().empty() ? first.size() : v.params.raw().data() - first.data()));
  while (!head.empty() && (head.back() == ' ' || head.back() == '\t' || head.back() == '\r' || head.back() == '\n'))
    head.remove_suffix(1);
  o.append("Via: ");
  append_safe(o, head);
  size_t cur = 0;
  std::string_view n, val;
  while (v.params.next(cur, n, val)) {
    if (iequals(n, "received") || iequals(n, "rport")) continue;
    o += ';';
    append_safe(o, n);
    if (!val.empty()) {
      o += '=';
      append_safe(o, val);
    }
  }
  o.append(";received=");
  append_safe(o, ip);
  if (v.has_rport) {
    o.append(";rport=");
    append_int(o, port);
  }
  rest = trim_lws(rest);
  while (!rest.empty() && rest.front() == ',') rest = trim_lws(rest.substr(1));
  if (!rest.empty()) {
    o.append(", ");
    append_safe(o, rest);
  }
  o.append("\r\n");
}

void copy_headers(Writer& w, const Message& req, int code, std::string_view to_tag, std::string_view ip,
                  uint16_t port, bool set_source) {
  bool top = true;
  for (const Header& h : req.headers()) {
    switch (h.id) {
      case HeaderId::Via:
        if (top && set_source) write_top_via(w.out(), h.value, ip, port);
        else w.header("Via", h.value);
        top = false;
        break;
      case HeaderId::From:
        w.header("From", h.value);
        break;
      case HeaderId::To:
        if (code > 100 && req.to_tag().empty() && !to_tag.empty()) {
          std::string& o = w.out();
          o.append("To: ");
          append_safe(o, h.value);
          o.append(";tag=");
          append_safe(o, to_tag);
          o.append("\r\n");
        } else {
          w.header("To", h.value);
        }
        break;
      case HeaderId::CallId:
        w.header("Call-ID", h.value);
        break;
      case HeaderId::CSeq:
        w.header("CSeq", h.value);
        break;
      default:
        break;
    }
  }
}

}  // namespace

void start_response(Writer& w, const Message& req, int code, std::string_view reason, std::string_view to_tag) {
  w.status_line(code, reason);
  copy_headers(w, req, code, to_tag, {}, 0, false);
}

void start_response(Writer& w, const Message& req, int code, std::string_view reason, std::string_view to_tag,
                    std::string_view source_ip, uint16_t source_port) {
  w.status_line(code, reason);
  copy_headers(w, req, code, to_tag, source_ip, source_port, true);
}

bool system_random(void*, size_t n, std::string& out) { return util::random_bytes(n, out); }

namespace {
bool random_hex(RandomSource rnd, void* ctx, size_t n, std::string& out) {
  std::string raw;
  if (!rnd || !rnd(ctx, n, raw) || raw.size() != n) return false;
  out.append(util::hex_encode(raw));
  return true;
}
}  // namespace

bool new_branch(std::string& out, RandomSource rnd, void* ctx) {
  out.assign("z9hG4bK");
  if (!random_hex(rnd, ctx, 10, out)) {
    out.clear();
    return false;
  }
  return true;
}

bool new_tag(std::string& out, RandomSource rnd, void* ctx) {
  out.clear();
  return random_hex(rnd, ctx, 8, out) || (out.clear(), false);
}

bool new_call_id(std::string& out, std::string_view host, RandomSource rnd, void* ctx) {
  out.clear();
  if (!random_hex(rnd, ctx, 16, out)) {
    out.clear();
    return false;
  }
  if (!host.empty()) {
    out += '@';
    out.append(host);
  }
  return true;
}

}  // namespace junction::sip
