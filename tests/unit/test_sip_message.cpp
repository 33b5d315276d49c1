// junction/sip/message.hpp, headers.hpp, builder.hpp: the zero-copy parser, typed header parsers,
// limits, datagram vs stream framing, and the builder (requests, responses, branches).
#include <junction/sip/builder.hpp>
#include <junction/sip/message.hpp>

#include <doctest/doctest.h>

#include <cstdlib>
#include <memory>
#include <new>

// This binary replaces the global operator new/delete with malloc/free (to count allocations);
// GCC 12 at -O1 inlines the pair and warns that free() meets a pointer from operator new, which
// is exactly the replacement: a known false positive of -Wmismatched-new-delete.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#include <string>
#include <vector>

using namespace junction::sip;

// Every operator new of this test binary is counted, so a test can assert that parsing allocates
// nothing (the hot-path rule: no allocation per message).
static size_t g_news = 0;
void* operator new(size_t n) {
  ++g_news;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace {

const char kRegister[] =
    "REGISTER sip:registrar.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKnashds7;rport\r\n"
    "Max-Forwards: 70\r\n"
    "To: Bob <sip:bob@example.com>\r\n"
    "From: Bob <sip:bob@example.com>;tag=456248\r\n"
    "Call-ID: 843817637684230@998sdasdh09\r\n"
    "CSeq: 1826 REGISTER\r\n"
    "Contact: <sip:bob@192.0.2.4>;expires=7200\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

const char kInvite[] =
    "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\r\n"
    "Max-Forwards: 70\r\n"
    "From: \"Alice \\\"A\\\"\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
    "To: Bob <sip:bob@biloxi.example.com>\r\n"
    "Call-ID: 3848276298220188511@atlanta.example.com\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:alice@client.atlanta.example.com;transport=tcp>\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 10\r\n"
    "\r\n"
    "v=0\r\no=x\r\n";

// Owns its copy of the text: the message's views point into it.
struct Parsed {
  std::string text;
  std::unique_ptr<Message> m = std::make_unique<Message>();
  ParseStatus st;
  Parsed(std::string_view t, Framing f = Framing::Datagram, const Limits& l = Limits{}) : text(t) {
    st = parse(text, *m, f, l);
  }
};

}  // namespace

TEST_CASE("sip message: a REGISTER parses into views of the buffer") {
  std::string text = kRegister;
  Parsed p(text);
  REQUIRE(p.st == ParseStatus::Ok);
  const Message& m = *p.m;
  CHECK(m.is_request());
  CHECK(m.method() == "REGISTER");
  CHECK(m.request_uri() == "sip:registrar.example.com");
  CHECK(m.top_via().transport == "UDP");
  CHECK(m.top_via().host == "192.0.2.4");
  CHECK(m.top_via().port == 5060);
  CHECK(m.top_via().branch == "z9hG4bKnashds7");
  CHECK(m.top_via().rfc3261_branch());
  CHECK(m.top_via().has_rport);
  CHECK_FALSE(m.top_via().rport_value);
  CHECK(m.from_tag() == "456248");
  CHECK(m.to_tag().empty());
  CHECK(m.call_id() == "843817637684230@998sdasdh09");
  CHECK(m.cseq().seq == 1826);
  CHECK(m.cseq().method == "REGISTER");
  CHECK(m.max_forwards() == 70);
  CHECK(m.content_length() == 0);
  CHECK(m.body().empty());
  CHECK(m.headers().size() == 8);
  CHECK(m.size() == text.size());
  // Views point into the caller's buffer: nothing was copied.
  CHECK(m.call_id().data() >= p.text.data());
  CHECK(m.call_id().data() < p.text.data() + p.text.size());
  const Header* c = m.find(HeaderId::Contact);
  REQUIRE(c);
  Contact ct;
  REQUIRE(parse_contact(c->value, ct));
  CHECK(ct.expires == 7200);
  CHECK(ct.addr.uri_text == "sip:bob@192.0.2.4");
}

TEST_CASE("sip message: INVITE with a body, quoted display name, Content-Type") {
  Parsed p(kInvite);
  REQUIRE(p.st == ParseStatus::Ok);
  CHECK(p.m->body() == "v=0\r\no=x\r\n");
  CHECK(p.m->content_type() == "application/sdp");
  CHECK(p.m->from().display == "\"Alice \\\"A\\\"\"");
  CHECK(unquote(p.m->from().display) == "Alice \"A\"");
  CHECK(p.m->to().display == "Bob");
  CHECK(p.m->from_tag() == "9fxced76sl");
}

TEST_CASE("sip message: a response") {
  std::string text =
      "SIP/2.0 180 Ringing\r\n"
      "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;received=127.0.0.2;rport=5071\r\n"
      "From: <sip:a@127.0.0.1>;tag=1\r\n"
      "To: <sip:b@127.0.0.1>;tag=2\r\n"
      "Call-ID: c1\r\n"
      "CSeq: 7 INVITE\r\n"
      "Content-Length: 0\r\n\r\n";
  Parsed p(text);
  REQUIRE(p.st == ParseStatus::Ok);
  CHECK(p.m->is_response());
  CHECK(p.m->status() == 180);
  CHECK(p.m->reason() == "Ringing");
  CHECK(p.m->top_via().received == "127.0.0.2");
  CHECK(p.m->top_via().rport_value);
  CHECK(p.m->top_via().rport == 5071);
  CHECK(p.m->to_tag() == "2");
}

TEST_CASE("sip message: compact forms, case-insensitive names, folding, several values") {
  std::string text =
      "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\n"
      "v: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKa ,\r\n"
      "  SIP/2.0/TCP [::1]:5080;branch=z9hG4bKb\r\n"
      "VIA: SIP/2.0/UDP 127.0.0.3;branch=z9hG4bKc\r\n"
      "f: <sip:a@127.0.0.1>;tag=x\r\n"
      "t: sip:b@127.0.0.1\r\n"
      "i: abc\r\n"
      "cseq: 2 OPTIONS\r\n"
      "subject: hello\r\n"
      "\tworld\r\n"
      "k: 100rel, timer\r\n"
      "l: 0\r\n\r\n";
  Parsed p(text);
  REQUIRE(p.st == ParseStatus::Ok);
  const Message& m = *p.m;
  CHECK(m.count(HeaderId::Via) == 2);
  CHECK(m.top_via().host == "127.0.0.1");
  CHECK(m.top_via().branch == "z9hG4bKa");
  // All Via values, in order, across both headers.
  std::vector<Via> vias;
  for (const Header* h = m.find(HeaderId::Via); h; h = m.next(h)) {
    std::string_view rest = h->value, v;
    while (next_value(rest, v)) {
      Via via;
      REQUIRE(parse_via(v, via));
      vias.push_back(via);
    }
  }
  REQUIRE(vias.size() == 3);
  // The same walk through for_each_value, and an early stop.
  std::vector<std::string_view> hosts;
  CHECK(for_each_value(m, HeaderId::Via, [&](std::string_view v) {
          Via via;
          REQUIRE(parse_via(v, via));
          hosts.push_back(via.host);
          return true;
        }) == 3);
  CHECK(hosts == std::vector<std::string_view>{"127.0.0.1", "::1", "127.0.0.3"});
  CHECK(for_each_value(m, HeaderId::Via, [](std::string_view) { return false; }) == 1);
  CHECK(for_each_value(m, HeaderId::Route, [](std::string_view) { return true; }) == 0);
  CHECK(vias[1].host == "::1");
  CHECK(vias[1].ipv6);
  CHECK(vias[1].port == 5080);
  CHECK(vias[2].branch == "z9hG4bKc");
  CHECK(vias[0].sent_by == "127.0.0.1");
  CHECK(vias[1].sent_by == "[::1]:5080");
  Via spaced;
  REQUIRE(parse_via("SIP/2.0/UDP  host.example.com : 5060 ;branch=z9hG4bKx", spaced));
  CHECK(spaced.sent_by == "host.example.com : 5060");
  CHECK(spaced.port == 5060);
  // Compact forms beyond RFC 3261's: u, x, b.
  CHECK(header_id("u") == HeaderId::AllowEvents);
  CHECK(header_id("X") == HeaderId::SessionExpires);
  CHECK(header_id("b") == HeaderId::ReferredBy);
  CHECK(header_id("session-expires") == HeaderId::SessionExpires);
  CHECK(header_name(HeaderId::AllowEvents) == "Allow-Events");
  CHECK(header_id("X-Unknown") == HeaderId::Other);
  const Header* s = m.find("Subject");
  REQUIRE(s);
  CHECK(unfold(s->value) == "hello world");
  CHECK(m.find("s") == s);
  CHECK(m.to().uri_text == "sip:b@127.0.0.1");
  CHECK_FALSE(m.to().angle);
  const Header* k = m.find(HeaderId::Supported);
  REQUIRE(k);
  std::string_view rest = k->value, v;
  REQUIRE(next_value(rest, v));
  CHECK(v == "100rel");
  REQUIRE(next_value(rest, v));
  CHECK(v == "timer");
  CHECK_FALSE(next_value(rest, v));
}

TEST_CASE("sip message: mandatory headers and malformed values are refused with the header named") {
  std::string base = kRegister;
  auto without = [&](std::string_view line) {
    std::string t = base;
    size_t at = t.find(line);
    REQUIRE(at != std::string::npos);
    t.erase(at, t.find("\r\n", at) + 2 - at);
    return t;
  };
  for (const char* h : {"Via:", "From:", "To:", "Call-ID:", "CSeq:"}) {
    INFO(h);
    Parsed p(without(h));
    CHECK(p.st == ParseStatus::MissingHeader);
    CHECK(std::string(p.m->error_header()) + ":" == h);
  }
  // Max-Forwards missing: tolerated, reported as -1.
  Parsed mf(without("Max-Forwards:"));
  CHECK(mf.st == ParseStatus::Ok);
  CHECK(mf.m->max_forwards() == -1);

  auto replaced = [&](std::string_view from, std::string_view to) {
    std::string t = base;
    size_t at = t.find(from);
    REQUIRE(at != std::string::npos);
    t.replace(at, from.size(), to);
    return t;
  };
  CHECK(Parsed(replaced("CSeq: 1826 REGISTER", "CSeq: 1826 INVITE")).st == ParseStatus::CSeqMismatch);
  CHECK(Parsed(replaced("CSeq: 1826 REGISTER", "CSeq: -1 REGISTER")).st == ParseStatus::BadHeaderValue);
  CHECK(Parsed(replaced("CSeq: 1826 REGISTER", "CSeq: 4294967296 REGISTER")).st == ParseStatus::BadHeaderValue);
  CHECK(Parsed(replaced("Max-Forwards: 70", "Max-Forwards: 256")).st == ParseStatus::BadHeaderValue);
  CHECK(Parsed(replaced("Content-Length: 0", "Content-Length: x")).st == ParseStatus::BadContentLength);
  CHECK(Parsed(replaced("Call-ID: 843817637684230@998sdasdh09", "Call-ID: a b")).st == ParseStatus::BadHeaderValue);
  CHECK(Parsed(replaced("SIP/2.0/UDP 192.0.2.4:5060", "SIP/2.0/UDP 192.0.2.4:99999")).st == ParseStatus::BadHeaderValue);
  CHECK(Parsed(replaced("REGISTER sip:registrar.example.com SIP/2.0", "REGISTER sip:registrar.example.com SIP/3.0")).st ==
        ParseStatus::BadVersion);
  CHECK(Parsed(replaced("REGISTER sip:registrar.example.com SIP/2.0", "REGISTER  sip:registrar.example.com SIP/2.0")).st ==
        ParseStatus::BadStartLine);
  CHECK(Parsed(replaced("Max-Forwards: 70", "Max-Forwards 70")).st == ParseStatus::BadHeader);
  CHECK(Parsed(replaced("Content-Length: 0\r\n", "Content-Length: 0\r\nContent-Length: 1\r\n")).st ==
        ParseStatus::BadContentLength);
  CHECK(Parsed(replaced("To: Bob <sip:bob@example.com>", "To: Bob <sip:bob@example.com>\r\nTo: x <sip:x@y>")).st ==
        ParseStatus::BadHeaderValue);
}

TEST_CASE("sip message: datagram body rules of RFC 3261 18.3") {
  std::string text = kInvite;
  // Extra bytes after Content-Length are dropped.
  Parsed extra(text + "garbage");
  REQUIRE(extra.st == ParseStatus::Ok);
  CHECK(extra.m->body() == "v=0\r\no=x\r\n");
  CHECK(extra.m->size() == text.size());
  // Fewer bytes than Content-Length: an error.
  Parsed cut(text.substr(0, text.size() - 1));
  CHECK(cut.st == ParseStatus::BodyTruncated);
  // No Content-Length on a datagram: the body is the rest of the packet.
  std::string nocl = text;
  nocl.erase(nocl.find("Content-Length: 10\r\n"), 20);
  Parsed p(nocl + "more");
  REQUIRE(p.st == ParseStatus::Ok);
  CHECK(p.m->content_length() == -1);
  CHECK(p.m->body() == "v=0\r\no=x\r\nmore");
  // No empty line: refused.
  CHECK(Parsed(std::string(kRegister).substr(0, sizeof kRegister - 3)).st == ParseStatus::Unterminated);
}

TEST_CASE("sip message: stream framing waits for the whole message and splits back-to-back ones") {
  std::string two = std::string(kInvite) + kRegister;
  for (size_t cut = 0; cut < sizeof kInvite - 1; ++cut) {
    Parsed p(two.substr(0, cut), Framing::Stream);
    REQUIRE(p.st == ParseStatus::Incomplete);
    size_t len = 0;
    bool ka = false;
    if (cut == 0) continue;
    CHECK(frame_stream(two.substr(0, cut), len, ka) == ParseStatus::Incomplete);
  }
  Parsed p(two, Framing::Stream);
  REQUIRE(p.st == ParseStatus::Ok);
  CHECK(p.m->size() == sizeof kInvite - 1);
  Parsed q(std::string_view(two).substr(p.m->size()), Framing::Stream);
  REQUIRE(q.st == ParseStatus::Ok);
  CHECK(q.m->method() == "REGISTER");
  size_t len = 0;
  bool ka = true;
  REQUIRE(frame_stream(two, len, ka) == ParseStatus::Ok);
  CHECK(len == sizeof kInvite - 1);
  CHECK_FALSE(ka);
  REQUIRE(frame_stream("\r\n\r\nINV", len, ka) == ParseStatus::Ok);
  CHECK(ka);
  CHECK(len == 4);
  // A folded Content-Length frames like an unfolded one.
  std::string folded = kRegister;
  folded.replace(folded.find("Content-Length: 0"), 17, "Content-Length:\r\n  0");
  Parsed pf(folded, Framing::Stream);
  REQUIRE(pf.st == ParseStatus::Ok);
  REQUIRE(frame_stream(folded, len, ka) == ParseStatus::Ok);
  CHECK(len == pf.m->size());
  // A stream needs Content-Length.
  std::string nocl = kRegister;
  nocl.erase(nocl.find("Content-Length: 0\r\n"), 19);
  CHECK(Parsed(nocl, Framing::Stream).st == ParseStatus::BadContentLength);
  CHECK(frame_stream(nocl, len, ka) == ParseStatus::BadContentLength);
  // A stream announcing more than the limit is refused before the body arrives.
  std::string big = kRegister;
  big.replace(big.find("Content-Length: 0"), 17, "Content-Length: 900000");
  CHECK(Parsed(big, Framing::Stream).st == ParseStatus::TooLarge);
  CHECK(frame_stream(big, len, ka) == ParseStatus::TooLarge);
}

TEST_CASE("sip message: hard limits give their own errors") {
  Limits l;
  l.max_headers = 8;
  std::string text = kRegister;
  CHECK(Parsed(text, Framing::Datagram, l).st == ParseStatus::Ok);
  l.max_headers = 7;
  CHECK(Parsed(text, Framing::Datagram, l).st == ParseStatus::TooManyHeaders);
  l = Limits{};
  l.max_header_line = 40;
  CHECK(Parsed(text, Framing::Datagram, l).st == ParseStatus::HeaderTooLong);
  l = Limits{};
  l.max_message = text.size() - 1;
  CHECK(Parsed(text, Framing::Datagram, l).st == ParseStatus::TooLarge);
  // The fixed index: 200 headers are refused even with a larger configured limit.
  std::string many = text;
  std::string extra;
  for (int i = 0; i < 200; ++i) extra += "X-H: " + std::to_string(i) + "\r\n";
  many.insert(many.find("Content-Length"), extra);
  l = Limits{};
  l.max_headers = 1000;
  CHECK(Parsed(many, Framing::Datagram, l).st == ParseStatus::TooManyHeaders);
  for (auto s : {ParseStatus::TooManyHeaders, ParseStatus::HeaderTooLong, ParseStatus::TooLarge})
    CHECK(std::string(to_string(s)).size() > 5);
}

TEST_CASE("sip builder: a request round-trips through the parser") {
  std::string buf, branch, tag, callid;
  REQUIRE(new_branch(branch));
  REQUIRE(new_tag(tag));
  REQUIRE(new_call_id(callid, "127.0.0.1"));
  CHECK(branch.rfind("z9hG4bK", 0) == 0);
  CHECK(branch.size() == 27);
  Writer w(buf);
  w.request_line("INVITE", "sip:bob@127.0.0.1:5080")
      .via("UDP", "::1", 5060, branch)
      .header("Max-Forwards", int64_t(70))
      .name_addr("From", "Al \"x\"", "sip:alice@127.0.0.1", tag)
      .name_addr("To", "", "sip:bob@127.0.0.1")
      .header("Call-ID", callid)
      .header("CSeq", "1 INVITE")
      .header("Subject", "evil\r\nX-Injected: 1");
  w.finish("v=0\r\n", "application/sdp");
  Parsed p(buf);
  REQUIRE(p.st == ParseStatus::Ok);
  CHECK(p.m->top_via().host == "::1");
  CHECK(p.m->top_via().branch == branch);
  CHECK(p.m->from_tag() == tag);
  CHECK(unquote(p.m->from().display) == "Al \"x\"");
  CHECK(p.m->call_id() == callid);
  CHECK(p.m->body() == "v=0\r\n");
  CHECK(p.m->content_length() == 5);
  CHECK(p.m->find("X-Injected") == nullptr);
}

TEST_CASE("sip builder: a response copies Via/From/To/Call-ID/CSeq and adds the To tag") {
  std::string req =
      "INVITE sip:b@127.0.0.1 SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;rport\r\n"
      "Via: SIP/2.0/UDP 127.0.0.9;branch=z9hG4bK0\r\n"
      "Max-Forwards: 69\r\n"
      "From: <sip:a@127.0.0.1>;tag=f\r\n"
      "To: <sip:b@127.0.0.1>\r\n"
      "Call-ID: cid\r\n"
      "CSeq: 3 INVITE\r\n"
      "Content-Length: 0\r\n\r\n";
  Parsed p(req);
  REQUIRE(p.st == ParseStatus::Ok);
  std::string buf;
  Writer w(buf);
  start_response(w, *p.m, 180, {}, "totag");
  w.finish();
  Parsed r(buf);
  REQUIRE(r.st == ParseStatus::Ok);
  CHECK(r.m->status() == 180);
  CHECK(r.m->reason() == "Ringing");
  CHECK(r.m->count(HeaderId::Via) == 2);
  CHECK(r.m->top_via().branch == "z9hG4bK1");
  CHECK(r.m->to_tag() == "totag");
  CHECK(r.m->from_tag() == "f");
  CHECK(r.m->cseq().seq == 3);
  CHECK(r.m->call_id() == "cid");
  CHECK(r.m->find(HeaderId::MaxForwards) == nullptr);
  // 100 Trying carries no To tag.
  Writer w2(buf);
  start_response(w2, *p.m, 100, {}, "totag");
  w2.finish();
  Parsed t(buf);
  REQUIRE(t.st == ParseStatus::Ok);
  CHECK(t.m->to_tag().empty());
}

TEST_CASE("sip builder: branches come from the injected random source") {
  auto fixed = [](void* ctx, size_t n, std::string& out) {
    out.assign(n, char(*static_cast<int*>(ctx)));
    return true;
  };
  int byte = 0xab;
  std::string b;
  REQUIRE(new_branch(b, fixed, &byte));
  CHECK(b == "z9hG4bKabababababababababab");
  auto failing = [](void*, size_t, std::string&) { return false; };
  CHECK_FALSE(new_branch(b, failing, nullptr));
  CHECK(b.empty());
}

TEST_CASE("sip builder: a server's response sets received and rport on the top Via (RFC 3581)") {
  std::string req =
      "REGISTER sip:127.0.0.1 SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bKnat;received=1.1.1.1 , SIP/2.0/UDP 10.0.0.9\r\n"
      "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK0\r\n"
      "From: <sip:a@127.0.0.1>;tag=f\r\n"
      "To: <sip:a@127.0.0.1>\r\n"
      "Call-ID: nat1\r\n"
      "CSeq: 1 REGISTER\r\n"
      "Content-Length: 0\r\n\r\n";
  Parsed p(req);
  REQUIRE(p.st == ParseStatus::Ok);
  std::string buf;
  Writer w(buf);
  start_response(w, *p.m, 200, {}, "t", "127.0.0.7", 40000);
  w.finish();
  Parsed r(buf);
  REQUIRE(r.st == ParseStatus::Ok);
  const Via& v = r.m->top_via();
  CHECK(v.host == "10.0.0.5");
  CHECK(v.port == 5060);
  CHECK(v.branch == "z9hG4bKnat");
  CHECK(v.received == "127.0.0.7");
  CHECK(v.rport_value);
  CHECK(v.rport == 40000);
  CHECK(r.m->count(HeaderId::Via) == 2);
  CHECK(buf.find("received=1.1.1.1") == std::string::npos);
  CHECK(buf.find(", SIP/2.0/UDP 10.0.0.9") != std::string::npos);
  // Without rport in the request: received only.
  std::string no_rport = req;
  no_rport.erase(no_rport.find(";rport"), 6);
  Parsed q(no_rport);
  REQUIRE(q.st == ParseStatus::Ok);
  Writer w2(buf);
  start_response(w2, *q.m, 100, {}, {}, "127.0.0.7", 40000);
  w2.finish();
  Parsed r2(buf);
  REQUIRE(r2.st == ParseStatus::Ok);
  CHECK(r2.m->top_via().received == "127.0.0.7");
  CHECK_FALSE(r2.m->top_via().has_rport);
}

TEST_CASE("sip message: parsing and building allocate nothing once the buffers exist") {
  auto m = std::make_unique<Message>();
  std::string out;
  out.reserve(4096);
  std::string reg = kRegister, inv = kInvite;
  size_t before = g_news;
  for (int i = 0; i < 100; ++i) {
    REQUIRE(parse(reg, *m) == ParseStatus::Ok);
    REQUIRE(parse(inv, *m, Framing::Stream) == ParseStatus::Ok);
    Writer w(out);
    start_response(w, *m, 180, {}, "tag1", "127.0.0.1", 5060);
    w.header("Contact", "<sip:b@127.0.0.1>");
    w.finish();
    Via v;
    REQUIRE(parse_via(m->find(HeaderId::Via)->value, v));
  }
  CHECK(g_news == before);
  // The counter works: a string that outgrows its buffer is counted.
  std::string grow;
  grow.assign(1000, 'x');
  CHECK(g_news > before);
}

TEST_CASE("sip message: header_id knows every name in any case, and nothing that only looks alike") {
  for (int i = 1; i < int(HeaderId::kCount); ++i) {
    HeaderId id = HeaderId(i);
    std::string name(header_name(id));
    REQUIRE_FALSE(name.empty());
    CHECK(header_id(name) == id);
    std::string up = name, low = name;
    for (char& c : up) c = char(c >= 'a' && c <= 'z' ? c - 32 : c);
    for (char& c : low) c = char(c >= 'A' && c <= 'Z' ? c + 32 : c);
    CHECK(header_id(up) == id);
    CHECK(header_id(low) == id);
    // Same length, same first letter, one byte different: not that header.
    std::string near = name;
    near.back() = near.back() == 'x' ? 'y' : 'x';
    CHECK(header_id(near) != id);
  }
  // The two names sharing length and first letter (Call-ID / Contact) both found.
  CHECK(header_id("call-id") == HeaderId::CallId);
  CHECK(header_id("CONTACT") == HeaderId::Contact);
  CHECK(header_id("Contaxt") == HeaderId::Other);
  CHECK(header_id("i") == HeaderId::CallId);
  CHECK(header_id("") == HeaderId::Other);
  CHECK(header_id("X-Very-Long-Header-Name-Beyond-Any") == HeaderId::Other);
  CHECK(header_id("1ia") == HeaderId::Other);
}

TEST_CASE("sip message: header lines split the same with many folded lines (beyond the recorded line ends)") {
  // More line ends than parse() records in its first pass: the rest are found by searching again.
  std::string text = "MESSAGE sip:a@127.0.0.1 SIP/2.0\r\n"
                     "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
                     "From: <sip:b@127.0.0.1>;tag=1\r\n"
                     "To: <sip:a@127.0.0.1>\r\n"
                     "Subject: x\r\n";
  for (int i = 0; i < 200; ++i) text += " folded" + std::to_string(i) + "\r\n";
  text += "Call-ID: c1\r\nCSeq: 7 MESSAGE\r\nX-Last: end\r\nContent-Length: 2\r\n\r\nhi";
  Parsed p(text);
  REQUIRE(p.st == ParseStatus::Ok);
  CHECK(p.m->call_id() == "c1");
  CHECK(p.m->body() == "hi");
  const Header* subj = p.m->find(HeaderId::Subject);
  REQUIRE(subj);
  CHECK(subj->value.substr(0, 1) == "x");
  CHECK(subj->value.find("folded199") != std::string_view::npos);
  REQUIRE(p.m->find("X-Last"));
  CHECK(p.m->find("X-Last")->value == "end");
  CHECK(p.m->headers().size() == 8);
}
