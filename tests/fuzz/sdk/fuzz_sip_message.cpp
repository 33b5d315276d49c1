// The SIP message parser on arbitrary bytes, as a datagram and as a stream. Invariants: every view
// lies inside the input; a parsed request answers with a response (start_response) that parses
// back with the same Call-ID, CSeq, From tag, Via count and top branch (also with received/rport
// set on the top Via); any input turned into UTF-8 by the charset helper is valid UTF-8. stream parsing agrees with
// frame_stream and never claims more bytes than it has; a prefix of a stream is never Ok with a
// size beyond the prefix. Every header value also goes through every typed parser (no crash).
#include <junction/sip/builder.hpp>
#include <junction/sip/charset.hpp>
#include <junction/sip/message.hpp>

#include <cstdlib>
#include <memory>
#include <string>

using namespace junction::sip;

namespace {
bool inside(std::string_view in, std::string_view v) {
  return v.empty() || (v.data() >= in.data() && v.data() + v.size() <= in.data() + in.size());
}
void check(bool ok) {
  if (!ok) std::abort();
}
void poke_typed(std::string_view value) {
  Via via;
  NameAddr na;
  Contact c;
  CSeq cs;
  AuthHeader a;
  uint64_t n;
  int64_t t;
  int ms;
  std::string_view rest = value, one;
  int guard = 0;
  while (next_value(rest, one) && ++guard < 1000) {
    if (parse_via(one, via)) check(inside(value, via.host) && inside(value, via.branch));
    if (parse_contact(one, c) && !c.star) check(inside(value, c.addr.uri_text));
    Uri u;
    if (parse_name_addr(one, na) && parse_uri(na.uri_text, u)) check(uri_equal(u, u) || u.scheme == Scheme::Tel);
  }
  parse_cseq(value, cs);
  parse_uint(value, ~uint64_t(0), n);
  if (parse_auth(value, a)) {
    size_t cur = 0;
    std::string_view k, v;
    while (a.next(cur, k, v)) check(inside(value, k) && inside(value, v));
  }
  parse_date(value, t, ms);
  unfold(value);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto m = std::make_unique<Message>();
  ParseStatus st = parse(in, *m, Framing::Datagram);
  check(to_string(st) != nullptr);
  if (st == ParseStatus::Ok) {
    check(m->size() <= in.size());
    check(inside(in, m->body()) && inside(in, m->bytes()) && inside(in, m->call_id()));
    check(inside(in, m->top_via().branch) && inside(in, m->from_tag()) && inside(in, m->to_tag()));
    check(m->headers().size() <= Message::kMaxHeaders);
    for (const Header& h : m->headers()) {
      check(inside(in, h.name) && inside(in, h.value));
      check(h.id == header_id(h.name));
      poke_typed(h.value);
    }
    if (m->is_request()) {
      std::string out;
      Writer w(out);
      start_response(w, *m, 200, {}, "fuzztag");
      w.finish();
      auto r = std::make_unique<Message>();
      check(parse(out, *r) == ParseStatus::Ok);
      check(r->call_id() == m->call_id());
      check(r->cseq().seq == m->cseq().seq && r->cseq().method == m->cseq().method);
      check(r->from_tag() == m->from_tag());
      check(r->count(HeaderId::Via) == m->count(HeaderId::Via));
      check(r->top_via().branch == m->top_via().branch);
      check(m->to_tag().empty() ? r->to_tag() == "fuzztag" : r->to_tag() == m->to_tag());
      // As a server transport answers: received / rport set on the top Via, the rest unchanged.
      Writer w2(out);
      start_response(w2, *m, 401, {}, "fuzztag", "127.0.0.1", 5070);
      w2.finish();
      check(parse(out, *r) == ParseStatus::Ok);
      check(r->top_via().received == "127.0.0.1" && r->top_via().branch == m->top_via().branch);
      check(r->top_via().has_rport == m->top_via().has_rport);
      if (m->top_via().has_rport) check(r->top_via().rport == 5070);
      check(r->count(HeaderId::Via) == m->count(HeaderId::Via) && r->call_id() == m->call_id());
    }
  }
  // Stream: parse and frame_stream agree.
  ParseStatus ss = parse(in, *m, Framing::Stream);
  size_t len = 0;
  bool ka = false;
  ParseStatus fs = frame_stream(in, len, ka);
  check(len <= in.size());
  if (ss == ParseStatus::Ok) {
    check(m->size() <= in.size());
    check(fs == ParseStatus::Ok);
    check(ka ? m->size() >= len : m->size() == len);
    // Any shorter prefix is never a complete message of a larger size.
    std::string_view prefix = in.substr(0, m->size() / 2);
    auto p = std::make_unique<Message>();
    if (parse(prefix, *p, Framing::Stream) == ParseStatus::Ok) check(p->size() <= prefix.size());
  }
  if (fs == ParseStatus::Ok && !ka) check(len > 0);
  // Any bytes, any label: the charset helper gives valid UTF-8.
  std::string utf8;
  to_utf8(in, declared_charset(size ? in.substr(0, size % 64) : in, in), utf8);
  check(is_valid_utf8(utf8));
  return 0;
}
