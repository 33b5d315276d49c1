#include <junction/sip/message.hpp>

#include "chars.hpp"
#include "hash.hpp"

#include <charconv>
#include <cstring>

namespace junction::sip {

using namespace detail;

namespace {

struct NameEntry {
  std::string_view name;
  HeaderId id;
};
constexpr NameEntry kNames[] = {
    {"Via", HeaderId::Via},
    {"From", HeaderId::From},
    {"To", HeaderId::To},
    {"Call-ID", HeaderId::CallId},
    {"CSeq", HeaderId::CSeq},
    {"Contact", HeaderId::Contact},
    {"Max-Forwards", HeaderId::MaxForwards},
    {"Content-Length", HeaderId::ContentLength},
    {"Content-Type", HeaderId::ContentType},
    {"Content-Encoding", HeaderId::ContentEncoding},
    {"Route", HeaderId::Route},
    {"Record-Route", HeaderId::RecordRoute},
    {"Expires", HeaderId::Expires},
    {"Min-Expires", HeaderId::MinExpires},
    {"WWW-Authenticate", HeaderId::WWWAuthenticate},
    {"Authorization", HeaderId::Authorization},
    {"Proxy-Authenticate", HeaderId::ProxyAuthenticate},
    {"Proxy-Authorization", HeaderId::ProxyAuthorization},
    {"Date", HeaderId::Date},
    {"Subject", HeaderId::Subject},
    {"Allow", HeaderId::Allow},
    {"Supported", HeaderId::Supported},
    {"Require", HeaderId::Require},
    {"Proxy-Require", HeaderId::ProxyRequire},
    {"Unsupported", HeaderId::Unsupported},
    {"Event", HeaderId::Event},
    {"Subscription-State", HeaderId::SubscriptionState},
    {"User-Agent", HeaderId::UserAgent},
    {"Server", HeaderId::Server},
    {"Accept", HeaderId::Accept},
    {"Refer-To", HeaderId::ReferTo},
    {"Allow-Events", HeaderId::AllowEvents},
    {"Session-Expires", HeaderId::SessionExpires},
    {"Referred-By", HeaderId::ReferredBy},
};

HeaderId compact_id(char c) {
  switch (lower(c)) {
    case 'v': return HeaderId::Via;
    case 'f': return HeaderId::From;
    case 't': return HeaderId::To;
    case 'i': return HeaderId::CallId;
    case 'm': return HeaderId::Contact;
    case 'l': return HeaderId::ContentLength;
    case 'c': return HeaderId::ContentType;
    case 'k': return HeaderId::Supported;
    case 's': return HeaderId::Subject;
    case 'e': return HeaderId::ContentEncoding;
    case 'o': return HeaderId::Event;
    case 'r': return HeaderId::ReferTo;
    case 'u': return HeaderId::AllowEvents;
    case 'x': return HeaderId::SessionExpires;
    case 'b': return HeaderId::ReferredBy;
    default: return HeaderId::Other;
  }
}

}  // namespace


namespace {
// kNames by (length, lower-case first letter): the first candidate's index + 1 (0: none) and,
// for the few names sharing both (Call-ID / Contact), the next one's. One table read and
// usually one comparison per header line (the letter buckets above walked up to six names).
struct LenLetterIndex {
  static constexpr size_t kMaxLen = 20;
  uint8_t first[kMaxLen + 1][26]{};
  uint8_t next[sizeof kNames / sizeof kNames[0]]{};
  constexpr LenLetterIndex() {
    constexpr size_t n = sizeof kNames / sizeof kNames[0];
    for (size_t i = n; i-- > 0;) {
      size_t len = kNames[i].name.size();
      int letter = lower(kNames[i].name[0]) - 'a';
      next[i] = first[len][letter];
      first[len][letter] = uint8_t(i + 1);
    }
  }
};
constexpr LenLetterIndex kLenLetter;
}  // namespace

HeaderId header_id(std::string_view name) {
  if (name.size() == 1) return compact_id(name[0]);
  if (name.empty() || name.size() > LenLetterIndex::kMaxLen) return HeaderId::Other;
  int letter = lower(name[0]) - 'a';
  if (letter < 0 || letter >= 26) return HeaderId::Other;
  for (size_t k = kLenLetter.first[name.size()][letter]; k; k = kLenLetter.next[k - 1])
    if (iequal(kNames[k - 1].name, name)) return kNames[k - 1].id;
  return HeaderId::Other;
}

std::string_view header_name(HeaderId id) {
  for (const auto& e : kNames)
    if (e.id == id) return e.name;
  return {};
}

const char* to_string(ParseStatus s) {
  switch (s) {
    case ParseStatus::Ok: return "ok";
    case ParseStatus::Incomplete: return "incomplete message";
    case ParseStatus::TooLarge: return "message too large";
    case ParseStatus::TooManyHeaders: return "too many headers";
    case ParseStatus::HeaderTooLong: return "header line too long";
    case ParseStatus::BadStartLine: return "malformed request or status line";
    case ParseStatus::BadVersion: return "unsupported SIP version";
    case ParseStatus::BadHeader: return "malformed header line";
    case ParseStatus::BadHeaderValue: return "malformed header value";
    case ParseStatus::MissingHeader: return "missing mandatory header";
    case ParseStatus::BadContentLength: return "bad or missing Content-Length";
    case ParseStatus::BodyTruncated: return "body shorter than Content-Length";
    case ParseStatus::CSeqMismatch: return "CSeq method differs from the request method";
    case ParseStatus::Unterminated: return "no empty line after the headers";
  }
  return "unknown error";
}

const Header* Message::find(HeaderId id) const {
  for (size_t i = 0; i < count_; ++i)
    if (headers_[i].id == id) return &headers_[i];
  return nullptr;
}

const Header* Message::find(std::string_view name) const {
  HeaderId id = header_id(name);
  if (id != HeaderId::Other) return find(id);
  for (size_t i = 0; i < count_; ++i)
    if (headers_[i].id == HeaderId::Other && iequal(headers_[i].name, name)) return &headers_[i];
  return nullptr;
}

const Header* Message::next(const Header* h) const {
  if (!h || h < headers_.data() || h >= headers_.data() + count_) return nullptr;
  for (const Header* p = h + 1; p < headers_.data() + count_; ++p) {
    if (p->id != h->id) continue;
    if (h->id != HeaderId::Other || iequal(p->name, h->name)) return p;
  }
  return nullptr;
}

size_t Message::count(HeaderId id) const {
  size_t n = 0;
  for (size_t i = 0; i < count_; ++i) n += headers_[i].id == id;
  return n;
}

std::string_view Message::content_type() const {
  const Header* h = find(HeaderId::ContentType);
  return h ? h->value : std::string_view();
}

void Message::reset() {
  request_ = false;
  method_ = request_uri_ = reason_ = {};
  status_ = 0;
  count_ = 0;
  via_ = Via{};
  call_id_ = {};
  cseq_ = CSeq{};
  from_ = to_ = NameAddr{};
  // ruri_, from_uri_, to_uri_: parse_uri() clears them before it writes (and a response clears
  // ruri_): 0.5 KB of stores per message saved; after a failed parse() they are not to be read.
  from_tag_ = to_tag_ = {};
  max_forwards_ = -1;
  content_length_ = -1;
  body_ = bytes_ = error_header_ = {};
  skipped_ = 0;
  has_fingerprint_ = false;
}

namespace {
// FNV-1a, field by field with a separator (so "ab|c" and "a|bc" differ), then a final mix.
struct Fnv {
  uint64_t h = 0xcbf29ce484222325ull;
  void add(std::string_view s) {
    for (char c : s) h = (h ^ uint8_t(c)) * 0x100000001b3ull;
    h = (h ^ 0xff) * 0x100000001b3ull;
  }
};
}  // namespace

uint64_t Message::fingerprint() const {
  if (has_fingerprint_) return fingerprint_;
  Fnv f;
  f.add(via_.branch);
  f.add(via_.sent_by);
  f.add(call_id_);
  char seq[16];
  f.add(std::string_view(seq, size_t(std::to_chars(seq, seq + sizeof seq, cseq_.seq).ptr - seq)));
  f.add(method_);
  f.add(from_tag_);
  fingerprint_ = detail::mix64(f.h);
  has_fingerprint_ = true;
  return fingerprint_;
}

namespace {

bool is_sip_version(std::string_view v) { return iequals(v, "SIP/2.0"); }

// "SIP/" 1*DIGIT "." 1*DIGIT in any case: a version, maybe not ours.
bool looks_like_version(std::string_view v) {
  if (v.size() < 7 || !iequals(v.substr(0, 4), "SIP/")) return false;
  size_t dot = v.find('.', 4);
  if (dot == std::string_view::npos || dot == 4 || dot + 1 == v.size()) return false;
  for (size_t i = 4; i < v.size(); ++i)
    if (i != dot && !is_digit(v[i])) return false;
  return true;
}

ParseStatus parse_start_line(std::string_view line, bool& request, std::string_view& method, std::string_view& uri,
                             int& status, std::string_view& reason, Uri& u) {
  if (line.size() >= 8 && iequals(line.substr(0, 4), "SIP/")) {
    // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos) return ParseStatus::BadStartLine;
    std::string_view ver = line.substr(0, sp);
    if (!is_sip_version(ver)) return looks_like_version(ver) ? ParseStatus::BadVersion : ParseStatus::BadStartLine;
    std::string_view rest = line.substr(sp + 1);
    if (rest.size() < 3 || !is_digit(rest[0]) || !is_digit(rest[1]) || !is_digit(rest[2]))
      return ParseStatus::BadStartLine;
    if (rest.size() > 3 && rest[3] != ' ') return ParseStatus::BadStartLine;
    status = (rest[0] - '0') * 100 + (rest[1] - '0') * 10 + (rest[2] - '0');
    if (status < 100 || status > 699) return ParseStatus::BadStartLine;
    reason = rest.size() > 4 ? rest.substr(4) : std::string_view();
    u = Uri{};  // a response has no Request-URI
    for (char c : reason)
      if (c == '\r' || c == '\n' || c == 0) return ParseStatus::BadStartLine;
    request = false;
    return ParseStatus::Ok;
  }
  // Request-Line = Method SP Request-URI SP SIP-Version (single spaces)
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return ParseStatus::BadStartLine;
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return ParseStatus::BadStartLine;
  method = line.substr(0, sp1);
  uri = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view ver = line.substr(sp2 + 1);
  if (!is_token(method)) return ParseStatus::BadStartLine;
  if (!is_sip_version(ver)) {
    if (looks_like_version(ver)) {
      // The rest is well formed: a server answers 505.
      return parse_uri(uri, u) ? ParseStatus::BadVersion : ParseStatus::BadStartLine;
    }
    return ParseStatus::BadStartLine;
  }
  if (!parse_uri(uri, u)) return ParseStatus::BadStartLine;
  // A Request-URI carries no headers (RFC 3261 19.1.5; RFC 4475 escruri).
  if ((u.scheme == Scheme::Sip || u.scheme == Scheme::Sips) && !u.headers.empty()) return ParseStatus::BadStartLine;
  request = true;
  return ParseStatus::Ok;
}

// The '\n' positions find_header_end() met, in order, so parse() splits the lines without a
// second memchr per line. Past kMax lines (rare: folded lines) the rest are searched again.
struct LineEnds {
  static constexpr size_t kMax = 160;
  uint32_t pos[kMax];
  size_t n = 0;
  bool overflow = false;
  size_t k = 0;  // the reader's cursor
  // The first '\n' in [from, end) of b, or end: from the recorded ends while they last.
  size_t next(std::string_view b, size_t from, size_t end) {
    while (k < n && pos[k] < from) ++k;
    if (k < n) return pos[k] < end ? pos[k] : end;
    if (!overflow) return end;
    const void* p = std::memchr(b.data() + from, '\n', end - from);
    return p ? size_t(static_cast<const char*>(p) - b.data()) : end;
  }
};

// Index of the end of the header section: the first byte of the empty line, or npos.
// body_start receives the index after it. ends (optional) records every '\n' before it.
size_t find_header_end(std::string_view b, size_t from, size_t& body_start, LineEnds* ends = nullptr) {
  size_t i = from;
  // The empty line may come right after the start line's end (a message with no headers).
  while (i < b.size()) {
    const void* p = std::memchr(b.data() + i, '\n', b.size() - i);
    if (!p) return std::string_view::npos;
    size_t nl = size_t(static_cast<const char*>(p) - b.data());
    if (ends) {
      if (ends->n < LineEnds::kMax) ends->pos[ends->n++] = uint32_t(nl);
      else ends->overflow = true;
    }
    size_t j = nl + 1;
    if (j < b.size() && b[j] == '\n') {
      body_start = j + 1;
      return j;
    }
    if (j + 1 < b.size() && b[j] == '\r' && b[j + 1] == '\n') {
      body_start = j + 2;
      return j;
    }
    if (j + 1 >= b.size() && j < b.size() && b[j] == '\r') return std::string_view::npos;  // need one more byte
    i = j;
  }
  return std::string_view::npos;
}

}  // namespace

ParseStatus parse(std::string_view b, Message& m, Framing framing, const Limits& limits) {
  m.reset();
  const bool stream = framing == Framing::Stream;
  if (!stream && b.size() > limits.max_message) return ParseStatus::TooLarge;
  size_t pos = 0;
  while (pos < b.size() && (b[pos] == '\r' || b[pos] == '\n')) ++pos;
  m.skipped_ = pos;
  if (pos == b.size()) return stream ? ParseStatus::Incomplete : ParseStatus::BadStartLine;

  // The header section must end (empty line) within the limits.
  size_t body_start = 0;
  if (b.size() > UINT32_MAX) return ParseStatus::TooLarge;  // LineEnds holds 32-bit offsets
  LineEnds ends;
  size_t hend = find_header_end(b, pos, body_start, &ends);
  if (hend == std::string_view::npos) {
    if (b.size() - pos > limits.max_message) return ParseStatus::TooLarge;
    return stream ? ParseStatus::Incomplete : ParseStatus::Unterminated;
  }
  if (body_start - pos > limits.max_message) return ParseStatus::TooLarge;

  // Start line.
  size_t nl = ends.next(b, pos, hend);
  std::string_view line = b.substr(pos, nl - pos);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.size() > limits.max_header_line) return ParseStatus::HeaderTooLong;
  ParseStatus st = parse_start_line(line, m.request_, m.method_, m.request_uri_, m.status_, m.reason_, m.ruri_);
  if (st != ParseStatus::Ok) return st;

  // Header lines: name ":" value, continuation lines start with SP / HT.
  const size_t max_headers = limits.max_headers < Message::kMaxHeaders ? limits.max_headers : Message::kMaxHeaders;
  size_t i = nl + 1;
  int64_t content_length = -1;
  bool have_from = false, have_to = false, have_cseq = false, have_callid = false, have_via = false;
  while (i < hend) {
    size_t start = i;
    size_t e = i;
    for (;;) {
      size_t n = ends.next(b, e, hend);
      e = n + 1;
      if (e >= hend || !is_wsp(b[e])) {
        e = n;
        break;
      }
    }
    size_t next_line = e + 1;
    std::string_view hl = b.substr(start, e - start);
    if (!hl.empty() && hl.back() == '\r') hl.remove_suffix(1);
    if (hl.size() > limits.max_header_line) return ParseStatus::HeaderTooLong;
    if (m.count_ >= max_headers) return ParseStatus::TooManyHeaders;
    // name
    size_t k = 0;
    while (k < hl.size() && is_token_char(hl[k])) ++k;
    std::string_view name = hl.substr(0, k);
    while (k < hl.size() && is_wsp(hl[k])) ++k;
    if (name.empty() || k >= hl.size() || hl[k] != ':') {
      m.error_header_ = hl.substr(0, hl.size() < 64 ? hl.size() : 64);
      return ParseStatus::BadHeader;
    }
    Header& h = m.headers_[m.count_++];
    h.name = name;
    h.value = trim(hl.substr(k + 1));
    h.id = header_id(name);
    auto bad = [&](ParseStatus s) {
      m.error_header_ = name;
      return s;
    };
    switch (h.id) {
      case HeaderId::Via:
        if (!have_via) {
          std::string_view rest = h.value, first;
          // One Via value (the usual case): it is the trimmed header value, no quote-aware split.
          if (std::memchr(rest.data(), ',', rest.size())) {
            if (!next_value(rest, first)) return bad(ParseStatus::BadHeaderValue);
          } else {
            first = rest;
            if (first.empty()) return bad(ParseStatus::BadHeaderValue);
          }
          if (!parse_via(first, m.via_)) return bad(ParseStatus::BadHeaderValue);
          have_via = true;
        }
        break;
      case HeaderId::From:
      case HeaderId::To: {
        bool& have = h.id == HeaderId::From ? have_from : have_to;
        NameAddr& na = h.id == HeaderId::From ? m.from_ : m.to_;
        if (have || !parse_name_addr(h.value, na)) return bad(ParseStatus::BadHeaderValue);
        // A tag needs a value: ";tag" alone would make the dialog's identity ambiguous.
        std::string_view& tag = h.id == HeaderId::From ? m.from_tag_ : m.to_tag_;
        if (na.params.get("tag", tag) && tag.empty()) return bad(ParseStatus::BadHeaderValue);
        if (!parse_uri(na.uri_text, h.id == HeaderId::From ? m.from_uri_ : m.to_uri_)) return bad(ParseStatus::BadHeaderValue);
        have = true;
        break;
      }
      case HeaderId::CallId:
        if (have_callid || !valid_call_id(h.value)) return bad(ParseStatus::BadHeaderValue);
        m.call_id_ = h.value;
        have_callid = true;
        break;
      case HeaderId::CSeq:
        if (have_cseq || !parse_cseq(h.value, m.cseq_)) return bad(ParseStatus::BadHeaderValue);
        have_cseq = true;
        break;
      case HeaderId::MaxForwards: {
        uint64_t v;
        if (m.max_forwards_ >= 0 || !parse_uint(h.value, 255, v)) return bad(ParseStatus::BadHeaderValue);
        m.max_forwards_ = int(v);
        break;
      }
      case HeaderId::ContentLength: {
        uint64_t v;
        if (!parse_uint(h.value, limits.max_message, v)) {
          return bad(to_uint(trim(h.value), ~uint64_t(0) / 10, v) ? ParseStatus::TooLarge : ParseStatus::BadContentLength);
        }
        if (content_length >= 0 && uint64_t(content_length) != v) return bad(ParseStatus::BadContentLength);
        content_length = int64_t(v);
        break;
      }
      default:
        break;
    }
    i = next_line;
  }
  if (!have_via) return m.error_header_ = "Via", ParseStatus::MissingHeader;
  if (!have_from) return m.error_header_ = "From", ParseStatus::MissingHeader;
  if (!have_to) return m.error_header_ = "To", ParseStatus::MissingHeader;
  if (!have_callid) return m.error_header_ = "Call-ID", ParseStatus::MissingHeader;
  if (!have_cseq) return m.error_header_ = "CSeq", ParseStatus::MissingHeader;
  if (m.request_ && m.cseq_.method != m.method_) return m.error_header_ = "CSeq", ParseStatus::CSeqMismatch;

  // Body.
  size_t avail = b.size() - body_start;
  m.content_length_ = content_length;
  if (stream) {
    if (content_length < 0) return m.error_header_ = "Content-Length", ParseStatus::BadContentLength;
    if (body_start - pos + size_t(content_length) > limits.max_message) return ParseStatus::TooLarge;
    if (avail < size_t(content_length)) return ParseStatus::Incomplete;
    m.body_ = b.substr(body_start, size_t(content_length));
  } else if (content_length < 0) {
    m.body_ = b.substr(body_start);
  } else {
    if (avail < size_t(content_length)) return m.error_header_ = "Content-Length", ParseStatus::BodyTruncated;
    m.body_ = b.substr(body_start, size_t(content_length));  // RFC 3261 18.3: extra bytes dropped
  }
  m.bytes_ = b.substr(pos, body_start + m.body_.size() - pos);
  return ParseStatus::Ok;
}

ParseStatus frame_stream(std::string_view b, size_t& len, bool& keepalive, const Limits& limits) {
  len = 0;
  keepalive = false;
  size_t pos = 0;
  while (pos < b.size() && (b[pos] == '\r' || b[pos] == '\n')) ++pos;
  if (pos > 0) {
    len = pos;
    keepalive = true;
    return ParseStatus::Ok;
  }
  size_t body_start = 0;
  size_t hend = find_header_end(b, 0, body_start);
  if (hend == std::string_view::npos)
    return b.size() > limits.max_message ? ParseStatus::TooLarge : ParseStatus::Incomplete;
  if (body_start > limits.max_message) return ParseStatus::TooLarge;
  // Content-Length (or "l"), mandatory on a stream; several must agree.
  int64_t cl = -1;
  size_t i = 0;
  while (i < hend) {
    // one logical header line: continuation lines (starting with SP / HT) belong to it
    size_t start = i, n;
    for (;;) {
      const void* p = std::memchr(b.data() + i, '\n', hend - i);
      n = p ? size_t(static_cast<const char*>(p) - b.data()) : hend;
      i = n + 1;
      if (i >= hend || !is_wsp(b[i])) break;
    }
    std::string_view hl = b.substr(start, n - start);
    size_t c = hl.find(':');
    if (c == std::string_view::npos || c == 0 || is_wsp(hl[0])) continue;
    if (header_id(rtrim(hl.substr(0, c))) != HeaderId::ContentLength) continue;
    uint64_t v;
    if (!parse_uint(hl.substr(c + 1), ~uint64_t(0) / 10, v)) return ParseStatus::BadContentLength;
    if (cl >= 0 && uint64_t(cl) != v) return ParseStatus::BadContentLength;
    cl = int64_t(v);
  }
  if (cl < 0) return ParseStatus::BadContentLength;
  if (uint64_t(cl) > limits.max_message || body_start + size_t(cl) > limits.max_message) return ParseStatus::TooLarge;
  if (b.size() - body_start < size_t(cl)) return ParseStatus::Incomplete;
  len = body_start + size_t(cl);
  return ParseStatus::Ok;
}

}  // namespace junction::sip
