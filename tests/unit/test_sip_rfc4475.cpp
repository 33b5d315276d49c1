// RFC 4475 (SIP torture test messages), written out: each valid message parses with the values
// the RFC points at; each invalid one is refused with the status named below, or parses to the
// documented tolerance (the typed header parser then refuses the bad header, or the message is
// syntactically fine and the RFC asks for a semantic answer: 416, 483, 505...).
//
// The messages are typed with "\n" line ends and converted to CRLF (the RFC's octet counts, such
// as Content-Length: 150 for the usual SDP body, hold after that). Non-printable octets are
// written as C escapes. mpart01's binary part is a stand-in of the same shape (its bytes are not
// reproducible from the RFC's text form); its Content-Length is computed.
#include <junction/sip/auth.hpp>
#include <junction/sip/message.hpp>

#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <string>

using namespace junction::sip;

namespace {

std::string crlf(std::string_view lf) {
  std::string out;
  for (char c : lf) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

const char kSdp150[] =
    "v=0\n"
    "o=mhandley 29739 7272939 IN IP4 192.0.2.1\n"
    "s=-\n"
    "c=IN IP4 192.0.2.1\n"
    "t=0 0\n"
    "m=audio 49217 RTP/AVP 0 12\n"
    "m=video 3227 RTP/AVP 31\n"
    "a=rtpmap:31 LPC\n";

struct P {
  std::unique_ptr<Message> m = std::make_unique<Message>();
  std::string text;
  ParseStatus st;
  explicit P(std::string t) : text(std::move(t)) {
    st = parse(text, *m);
    // JN_DUMP_SIP_CORPUS=dir writes every message out (how tests/fuzz/corpus/sip_message was seeded).
    if (const char* dir = std::getenv("JN_DUMP_SIP_CORPUS")) {
      std::ofstream(std::string(dir) + "/rfc4475-" + std::to_string(std::hash<std::string>{}(text)), std::ios::binary)
          << text;
    }
  }
};

}  // namespace

// ---- 3.1.1 valid messages ----

TEST_CASE("rfc4475 3.1.1.1 wsinv: a short tortuous INVITE") {
  P p(crlf("INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\n"
           "TO :\n"
           " sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\n"
           "from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\n"
           "  ;\n"
           "  tag = 98asjd8\n"
           "MaX-fOrWaRdS: 0068\n"
           "Call-ID: wsinv.ndaksdj@192.0.2.1\n"
           "Content-Length   : 150\n"
           "cseq: 0009\n"
           "  INVITE\n"
           "Via  : SIP  /   2.0\n"
           " /UDP\n"
           "    192.0.2.2;branch=390skdjuw\n"
           "s :\n"
           "NewFangledHeader:   newfangled value\n"
           " continued newfangled value\n"
           "UnknownHeaderWithUnusualValue: ;;,,;;,;\n"
           "Content-Type: application/sdp\n"
           "Route:\n"
           " <sip:services.example.com;lr;unknownwith=value;unknown-no-value>\n"
           "v:  SIP  / 2.0  / TCP     spindle.example.com   ;\n"
           "  branch  =   z9hG4bK9ikj8  ,\n"
           " SIP  /    2.0   / UDP  192.168.255.111   ; branch=\n"
           " z9hG4bK30239\n"
           "m:\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam =\n"
           "      newvalue ;\n"
           "  secondparam ; q = 0.33\n"
           "\n") +
      crlf("v=0\no=mhandley 29739 7272939 IN IP4 192.0.2.3\ns=-\nc=IN IP4 192.0.2.4\nt=0 0\n"
           "m=audio 49217 RTP/AVP 0 12\nm=video 3227 RTP/AVP 31\na=rtpmap:31 LPC\n"));
  REQUIRE(p.st == ParseStatus::Ok);
  const Message& m = *p.m;
  CHECK(m.method() == "INVITE");
  CHECK(m.to_tag() == "1918181833n");
  CHECK(m.from_tag() == "98asjd8");
  CHECK(unquote(m.from().display) == "J Rosenberg \\\"");
  CHECK(m.max_forwards() == 68);
  CHECK(m.cseq().seq == 9);
  CHECK(m.cseq().method == "INVITE");
  CHECK(m.top_via().transport == "UDP");
  CHECK(m.top_via().host == "192.0.2.2");
  CHECK(m.top_via().branch == "390skdjuw");
  CHECK_FALSE(m.top_via().rfc3261_branch());
  CHECK(m.body().size() == 150);
  // The second Via header holds two values.
  const Header* v2 = m.next(m.find(HeaderId::Via));
  REQUIRE(v2);
  std::string_view rest = v2->value, one;
  Via via;
  REQUIRE(next_value(rest, one));
  REQUIRE(parse_via(one, via));
  CHECK(via.host == "spindle.example.com");
  CHECK(via.branch == "z9hG4bK9ikj8");
  REQUIRE(next_value(rest, one));
  REQUIRE(parse_via(one, via));
  CHECK(via.host == "192.168.255.111");
  CHECK(via.branch == "z9hG4bK30239");
  CHECK_FALSE(next_value(rest, one));
  Contact c;
  REQUIRE(parse_contact(m.find(HeaderId::Contact)->value, c));
  CHECK(c.q1000 == 330);
  CHECK(c.addr.params.value("newparam") == "newvalue");
  CHECK(c.addr.params.has("secondparam"));
  CHECK(unquote(c.addr.display) == "Quoted string \"\"");
  CHECK(unfold(m.find("NewFangledHeader")->value) == "newfangled value continued newfangled value");
  CHECK(m.find(HeaderId::Subject)->value.empty());
  NameAddr route;
  REQUIRE(parse_name_addr(m.find(HeaderId::Route)->value, route));
  Uri ru;
  REQUIRE(parse_uri(route.uri_text, ru));
  CHECK(ru.lr());
  CHECK(ru.params.value("unknownwith") == "value");
}

TEST_CASE("rfc4475 3.1.1.2 intmeth: wide range of valid characters") {
  std::string t =
      "!interesting-Method0123456789_*+`.%indeed'~ "
      "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com "
      "SIP/2.0\n"
      "Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~\n"
      "To: \"BEL:\\\x07 NUL:\\";
  t += '\0';
  t += " DEL:\\\x7F\" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>\n"
       "From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%="
       "\"\xD1\x80\xD0\xB0\xD0\xB1\xD0\xBE\xD1\x82\xD0\xB0\xD1\x8E\xD1\x89\xD0\xB8\xD0\xB9\";tag=_token~1'+`*%!-.\n"
       "Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\n"
       "CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\n"
       "Max-Forwards: 255\n"
       "extensionHeader-!.%*+_`'~:\xEF\xBB\xBF\xE5\xA4\xA7\xE5\x81\x9C\xE9\x9B\xBB\n"
       "Content-Length: 0\n\n";
  P p(crlf(t));
  REQUIRE(p.st == ParseStatus::Ok);
  CHECK(p.m->method() == "!interesting-Method0123456789_*+`.%indeed'~");
  Uri u;
  REQUIRE(parse_uri(p.m->request_uri(), u));
  CHECK(u.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
  CHECK(u.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
  CHECK(u.host == "example.com");
  CHECK(p.m->from_tag() == "_token~1'+`*%!-.");
  CHECK(p.m->from().display == "token1~` token2'+_ token3*%!.-");
  CHECK(p.m->call_id() == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{");
  CHECK(p.m->max_forwards() == 255);
  CHECK(p.m->find("extensionHeader-!.%*+_`'~") != nullptr);
}

TEST_CASE("rfc4475 3.1.1.3 esc01: valid use of the % escaping mechanism") {
  P p(crlf(std::string("INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0\n"
                       "To: sip:%75se%72@example.com\n"
                       "From: <sip:I%20have%20spaces@example.net>;tag=938\n"
                       "Max-Forwards: 87\n"
                       "i: esc01.239409asdfakjkn23onasd0-3234\n"
                       "CSeq: 234234 INVITE\n"
                       "Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw\n"
                       "C: application/sdp\n"
                       "Contact:\n"
                       "  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>\n"
                       "Content-Length: 150\n\n") +
           kSdp150));
  REQUIRE(p.st == ParseStatus::Ok);
  Uri ruri, to;
  REQUIRE(parse_uri(p.m->request_uri(), ruri));
  std::string user;
  REQUIRE(unescape(ruri.user, user));
  CHECK(user == "sips:user@example.com");
  REQUIRE(parse_uri(p.m->to().uri_text, to));
  Uri plain;
  REQUIRE(parse_uri("sip:user@example.com", plain));
  CHECK(uri_equal(to, plain));
  CHECK(p.m->content_type() == "application/sdp");
  CHECK(p.m->call_id() == "esc01.239409asdfakjkn23onasd0-3234");
  Contact c;
  REQUIRE(parse_contact(p.m->find(HeaderId::Contact)->value, c));
  Uri cu;
  REQUIRE(parse_uri(c.addr.uri_text, cu));
  std::string v;
  REQUIRE(unescape(cu.params.value("n%61me"), v));
  CHECK(v == "value%41");
  CHECK(p.m->body().size() == 150);
}

TEST_CASE("rfc4475 3.1.1.4 escnull: escaped nulls in URIs") {
  P p(crlf("REGISTER sip:example.com SIP/2.0\n"
           "To: sip:null-%00-null@example.com\n"
           "From: sip:null-%00-null@example.com;tag=839923423\n"
           "Max-Forwards: 70\n"
           "Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd\n"
           "CSeq: 14398234 REGISTER\n"
           "Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw\n"
           "Contact: <sip:%00@host5.example.com>\n"
           "Contact: <sip:%00%00@host5.example.com>\n"
           "L:0\n\n"));
  REQUIRE(p.st == ParseStatus::Ok);
  Uri to;
  REQUIRE(parse_uri(p.m->to().uri_text, to));
  std::string user;
  REQUIRE(unescape(to.user, user));
  CHECK(user == std::string("null-\0-null", 11));
  CHECK(p.m->count(HeaderId::Contact) == 2);
  CHECK(p.m->content_length() == 0);
}

TEST_CASE("rfc4475 3.1.1.5 esc02: use of % when it is not an escape") {
  P p(crlf("RE%47IST%45R sip:registrar.example.com SIP/2.0\n"
           "To: \"%Z%45\" <sip:resource@example.com>\n"
           "From: \"%Z%45\" <sip:resource@example.com>;tag=f232jadfj23\n"
           "Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf\n"
           "Via: SIP/2.0/TCP host.example.com;branch=z9hG4bK209%fzsnel234\n"
           "CSeq: 29344 RE%47IST%45R\n"
           "Max-Forwards: 70\n"
           "Contact: <sip:alias1@host1.example.com>\n"
           "C%6Fntact: <sip:alias2@host2.example.com>\n"
           "Contact: <sip:alias3@host3.example.com>\n"
           "l: 0\n\n"));
  REQUIRE(p.st == ParseStatus::Ok);
  CHECK(p.m->method() == "RE%47IST%45R");  // an unknown method, not REGISTER
  CHECK(p.m->count(HeaderId::Contact) == 2);
  CHECK(p.m->find("C%6Fntact") != nullptr);
  CHECK(unquote(p.m->to().display) == "%Z%45");
}

TEST_CASE("rfc4475 3.1.1.6 lwsdisp: message with no LWS between display name and <") {
  P p(crlf("OPTIONS sip:user@example.com SIP/2.0\n"
           "To: sip:user@example.com\n"
           "From: caller<sip:caller@example.com>;tag=323\n"
           "Max-Forwards: 70\n"
           "Call-ID: lwsdisp.1234abcd@funky.example.com\n"
           "CSeq: 60 OPTIONS\n"
           "Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw\n"
           "l: 0\n\n"));
  REQUIRE(p.st == ParseStatus::Ok);
  CHECK(p.m->from().display == "caller");
  CHECK(p.m->from().uri_text == "sip:caller@example.com");
  CHECK(p.m->from_tag() == "323");
}

TEST_CASE("rfc4475 3.1.1.7 longreq: long values in header fields") {
  std::string ex(10, 'x');
  std::string t = "INVITE sip:user@example.com SIP/2.0\n"
                  "To: \"I have a user name of " +
                  std::string("extreme") + "extremeextremeextremeextremeextremeextremeextremeextremeextreme proportion\"" +
                  "<sip:user@example.com:6000;unknownparam1=very" + std::string(100, 'l') + "value;longparam" +
                  std::string(100, 'n') + "=shortvalue;very" + std::string(100, 'o') + "ParameterNameWithNoValue>\n" +
                  "F: sip:" + std::string(120, 'a') + "@example.net;tag=" + std::string(150, '9') +
                  ";unknownheaderparam" + std::string(80, 'n') + "=unknowheaderparam" + std::string(80, 'v') +
                  ";unknownValueless" + std::string(90, 'p') + "\n" +
                  "Call-ID: longreq.one" + std::string(120, 'r') + "longcallid\n"
                  "CSeq: 3882340 INVITE\n"
                  "Unknown-" + std::string(80, 'L') + "-Name: unknown-" + std::string(80, 'l') + "-value; unknown-" +
                  std::string(80, 'l') + "-parameter-name = unknown-" + std::string(80, 'l') + "-parameter-value\n";
  const char* vianames[] = {"Via", "v", "V", "Via", "ViA", "VIa", "VIA", "via", "viA", "vIa", "vIA", "V ", "v ",
                            "V  ", "v  ", "Via ", "Via  "};
  int n = 33;
  for (const char* name : vianames) t += std::string(name) + ": SIP/2.0/TCP sip" + std::to_string(n--) + ".example.com\n";
  for (; n >= 1; --n) t += "Via: SIP/2.0/TCP sip" + std::to_string(n) + ".example.com\n";
  t += "Via: SIP/2.0/TCP host.example.com;received=192.0.2.5;branch=very" + std::string(200, 'l') + "branchvalue\n"
       "Max-Forwards: 70\n"
       "Contact: <sip:" + std::string(120, 'a') + "@host5.example.net>\n"
       "Content-Type: application/sdp\n"
       "l: 150\n\n";
  t += kSdp150;
  P p(crlf(t));
  REQUIRE(p.st == ParseStatus::Ok);
  CHECK(p.m->count(HeaderId::Via) == 34);
  CHECK(p.m->top_via().host == "sip33.example.com");
  CHECK(p.m->from_tag() == std::string(150, '9'));
  CHECK(p.m->to().uri_text.size() > 300);
  CHECK(p.m->body().size() == 150);
}

TEST_CASE("rfc4475 3.1.1.8 dblreq: extra trailing octets in a UDP datagram") {
  std::string t = crlf("REGISTER sip:example.com SIP/2.0\n"
                       "To: sip:j.user@example.com\n"
                       "From: sip:j.user@example.com;tag=43251j3j324\n"
                       "Max-Forwards: 8\n"
                       "I: dblreq.0ha0isndaksdj99sdfafnl3lk233412\n"
                       "Contact: sip:j.user@host.example.com\n"
                       "CSeq: 8 REGISTER\n"
                       "Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492\n"
                       "Content-Length: 0\n\n");
  size_t first = t.size();
  t += crlf(std::string("INVITE sip:joe@example.com SIP/2.0\n"
                        "t: sip:joe@example.com\n"
                        "From: sip:caller@example.net;tag=141334\n"
                        "Max-Forwards: 8\n"
                        "Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15\n"
                        "CSeq: 8 INVITE\n"
                        "Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234\n"
                        "Content-Type: application/sdp\n"
                        "Content-Length: 150\n\n") +
                kSdp150);
  P p(t);
  REQUIRE(p.st == ParseStatus::Ok);
  CHECK(p.m->method() == "REGISTER");  // the INVITE is discarded (RFC 3261 18.3)
  CHECK(p.m->size() == first);
  CHECK(p.m->body().empty());
}

TEST_CASE("rfc4475 3.1.1.9 semiuri: semicolon-separated parameters in URI user part") {
  P p(crlf("OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0\n"
           "To: sip:j_user@example.com\n"
           "From: sip:caller@example.org;tag=33242\n"
           "Max-Forwards: 3\n"
           "Call-ID: semiuri.0ha0isndaksdj\n"
           "CSeq: 8 OPTIONS\n"
           "Accept: application/sdp, application/pkcs7-mime,\n"
           "        multipart/mixed, multipart/signed,\n"
           "        message/sip, message/sipfrag\n"
           "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw\n"
           "l: 0\n\n"));
  REQUIRE(p.st == ParseStatus::Ok);
  Uri u;
  REQUIRE(parse_uri(p.m->request_uri(), u));
  CHECK(u.user == "user;par=u%40example.net");
  CHECK(u.host == "example.com");
  CHECK(u.params.empty());
  std::string_view rest = p.m->find(HeaderId::Accept)->value, v;
  int n = 0;
  while (next_value(rest, v)) ++n;
  CHECK(n == 6);
}

TEST_CASE("rfc4475 3.1.1.10 transports: varied and unknown transport types") {
  P p(crlf("OPTIONS sip:user@example.com SIP/2.0\n"
           "To: sip:user@example.com\n"
           "From: <sip:caller@example.com>;tag=323\n"
           "Max-Forwards: 70\n"
           "Call-ID:  transports.kijh4akdnaqjkwendsasfdj\n"
           "Accept: application/sdp\n"
           "CSeq: 60 OPTIONS\n"
           "Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw\n"
           "Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf\n"
           "Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj\n"
           "Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en\n"
           "Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee\n"
           "l: 0\n\n"));
  REQUIRE(p.st == ParseStatus::Ok);
  const char* want[] = {"UDP", "SCTP", "TLS", "UNKNOWN", "TCP"};
  int i = 0;
  for (const Header* h = p.m->find(HeaderId::Via); h; h = p.m->next(h)) {
    Via v;
    REQUIRE(parse_via(h->value, v));
    CHECK(v.transport == want[i++]);
  }
  CHECK(i == 5);
  CHECK(p.m->call_id() == "transports.kijh4akdnaqjkwendsasfdj");
}

TEST_CASE("rfc4475 3.1.1.11 mpart01: multipart MIME message with a binary part") {
  std::string bin;
  for (int i = 0; i < 300; ++i) bin += char((i * 37 + 11) & 0xff);  // NULs, CRs, LFs included
  std::string body = crlf("--7a9cbec02ceef655\nContent-Type: text/plain\nContent-Transfer-Encoding: binary\n\nHello\n"
                          "--7a9cbec02ceef655\nContent-Type: application/octet-stream\n"
                          "Content-Transfer-Encoding: binary\n\n") +
                     bin + crlf("\n--7a9cbec02ceef655--\n");
  std::string t = crlf("MESSAGE sip:kumiko@example.org SIP/2.0\n"
                       "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-;rport\n"
                       "Max-Forwards: 70\n"
                       "Route: <sip:127.0.0.1:5080>\n"
                       "Identity: r5mwreLuyDRYBi/0TiPwEsY3rEVsk/G2WxhgTV1PF7hHuLIK0YWVKZhKv9Mj8UeXqkMVbnVq37CD+813gvYjcBUaZ"
                       "ngQmXc9WNZSDNGCzA+fWl9MEUHWIZo1CeJebdY/XlgKeTa0Olvq0rt70Q5jiSfbqMJmQFteeivUhkMWYUA=\n"
                       "Contact: <sip:fluffy@127.0.0.1:5070>\n"
                       "To: <sip:kumiko@example.org>\n"
                       "From: <sip:fluffy@example.com>;tag=2fb0dcc9\n"
                       "Call-ID: 3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..\n"
                       "CSeq: 1 MESSAGE\n"
                       "Content-Transfer-Encoding: binary\n"
                       "Content-Type: multipart/mixed;boundary=7a9cbec02ceef655\n"
                       "Date: Sat, 15 Oct 2005 04:44:56 GMT\n"
                       "User-Agent: SIPimp.org/0.2.5 (curses)\n"
                       "Content-Length: ") +
                  std::to_string(body.size()) + "\r\n\r\n" + body;
  P p(t);
  REQUIRE(p.st == ParseStatus::Ok);
  CHECK(p.m->body() == body);
  CHECK(p.m->top_via().has_rport);
  int64_t when = 0;
  int ms = -1;
  REQUIRE(parse_date(p.m->find(HeaderId::Date)->value, when, ms));
  CHECK(when == 1129351496);
}

TEST_CASE("rfc4475 3.1.1.12 unreason: UTF-8 in the reason phrase") {
  P p(crlf(std::string("SIP/2.0 200 = 2**3 * 5**2 \xD0\xBD\xD0\xBE \xD1\x81\xD1\x82\xD0\xBE "
                       "\xD0\xB4\xD0\xB5\xD0\xB2\xD1\x8F\xD0\xBD\xD0\xBE\xD1\x81\xD1\x82\xD0\xBE - \xD0\xBF\xD1\x80\xD0\xBE\n"
                       "Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923\n"
                       "Call-ID: unreason.1234ksdfak3j2erwedfsASdf\n"
                       "CSeq: 35 INVITE\n"
                       "From: sip:user@example.com;tag=11141343\n"
                       "To: sip:user@example.edu;tag=2229\n"
                       "Content-Length: 150\n"
                       "Content-Type: application/sdp\n"
                       "Contact: <sip:user@host198.example.com>\n\n") +
           kSdp150));
  REQUIRE(p.st == ParseStatus::Ok);
  CHECK(p.m->status() == 200);
  CHECK(p.m->reason().substr(0, 13) == "= 2**3 * 5**2");
}

TEST_CASE("rfc4475 3.1.1.13 noreason: empty reason phrase") {
  P p(crlf("SIP/2.0 100 \n"
           "Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe\n"
           "Call-ID: noreason.asndj203insdf99223ndf\n"
           "CSeq: 35 INVITE\n"
           "From: <sip:user@example.com>;tag=39ansfi3\n"
           "To: <sip:user@example.edu>;tag=902jndnke3\n"
           "Content-Length: 0\n"
           "Contact: <sip:user@host105.example.com>\n\n"));
  REQUIRE(p.st == ParseStatus::Ok);
  CHECK(p.m->status() == 100);
  CHECK(p.m->reason().empty());
}

// ---- 3.1.2 invalid messages ----

namespace {
std::string invite_with(std::string_view head) { return crlf(std::string(head) + "\n") + crlf(kSdp150); }
}  // namespace

TEST_CASE("rfc4475 3.1.2: invalid messages are refused with a reason") {
  struct Case {
    const char* name;
    std::string text;
    ParseStatus want;
    const char* header;  // error_header(), when the error is about one
  };
  const Case cases[] = {
      {"badinv01 extraneous header field separators",
       invite_with("INVITE sip:user@example.com SIP/2.0\nTo: sip:j.user@example.com\n"
                   "From: sip:caller@example.net;tag=134161461246\nMax-Forwards: 7\n"
                   "Call-ID: badinv01.0ha0isndaksdjasdf3234nas\nCSeq: 8 INVITE\nVia: SIP/2.0/UDP 192.0.2.15;;,;,,\n"
                   "Contact: \"Joe\" <sip:joe@example.org>;;;;\nContent-Length: 150\nContent-Type: application/sdp\n"),
       ParseStatus::BadHeaderValue, "Via"},
      {"clerr content length larger than message",
       invite_with("INVITE sip:user@example.com SIP/2.0\nMax-Forwards: 80\nTo: sip:j.user@example.com\n"
                   "From: sip:caller@example.net;tag=93942939o2\nContact: <sip:caller@hungry.example.net>\n"
                   "Call-ID: clerr.0ha0isndaksdjweiafasdk3\nCSeq: 8 INVITE\n"
                   "Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523\nContent-Type: application/sdp\n"
                   "Content-Length: 9999\n"),
       ParseStatus::BodyTruncated, "Content-Length"},
      {"scalar02 negative/overlarge values",
       crlf("REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3\n"
            "To: <sip:user@example.com>\nFrom: <sip:user@example.com>;tag=239232jh3\n"
            "CSeq: 36893488147419103232 REGISTER\nCall-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32\n"
            "Max-Forwards: 300\nExpires: 1" + std::string(100, '0') + "\nContact: <sip:user@host129.example.com>\n"
            "  ;expires=280297596632815\nContent-Length: 0\n\n"),
       ParseStatus::BadHeaderValue, "CSeq"},
      {"scalarlg large numbers in a response",
       crlf("SIP/2.0 503 Service Unavailable\n"
            "Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bKzzxdiwo34sw;received=192.0.2.129\n"
            "To: <sip:user@example.com>\nFrom: <sip:other@example.net>;tag=2easdjfejw\n"
            "CSeq: 9292394834772304023312 OPTIONS\nCall-ID: scalarlg.noase0of0234hn2qofoaf0232aewf2394r\n"
            "Retry-After: 949302838503028349304023988\nWarning: 1812 overture \"In Progress\"\nContent-Length: 0\n\n"),
       ParseStatus::BadHeaderValue, "CSeq"},
      {"quotbal unterminated quoted string in display name",
       invite_with("INVITE sip:user@example.com SIP/2.0\nTo: \"Mr. J. User <sip:j.user@example.com>\n"
                   "From: sip:caller@example.net;tag=93334\nMax-Forwards: 10\nCall-ID: quotbal.aksdj\n"
                   "Contact: <sip:caller@host59.example.net>\nCSeq: 8 INVITE\n"
                   "Via: SIP/2.0/UDP 192.0.2.59:5050;branch=z9hG4bKkdjuw39234\nContent-Type: application/sdp\n"
                   "Content-Length: 150\n"),
       ParseStatus::BadHeaderValue, "To"},
      {"ltgtruri <> enclosing Request-URI",
       invite_with("INVITE <sip:user@example.com> SIP/2.0\nTo: sip:user@example.com\n"
                   "From: sip:caller@example.net;tag=39291\nMax-Forwards: 23\nCall-ID: ltgtruri.1@192.0.2.5\n"
                   "CSeq: 1 INVITE\nVia: SIP/2.0/UDP 192.0.2.5\nContact: <sip:caller@host5.example.net>\n"
                   "Content-Type: application/sdp\nContent-Length: 150\n"),
       ParseStatus::BadStartLine, ""},
      {"lwsruri malformed SIP Request-URI (embedded LWS)",
       invite_with("INVITE sip:user@example.com; lr SIP/2.0\nTo: sip:user@example.com;tag=3xfe-9921883-z9f\n"
                   "From: sip:caller@example.net;tag=231413434\nMax-Forwards: 5\n"
                   "Call-ID: lwsruri.asdfasdoeoi2323-asdfwrn23-asd834rk423\nCSeq: 2130706432 INVITE\n"
                   "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKkdjuw2395\n"
                   "Contact: <sip:caller@host1.example.net>\nContent-Type: application/sdp\nContent-Length: 150\n"),
       ParseStatus::BadStartLine, ""},
      {"lwsstart multiple SP separating Request-Line elements",
       invite_with("INVITE  sip:user@example.com  SIP/2.0\nMax-Forwards: 8\nTo: sip:user@example.com\n"
                   "From: sip:caller@example.net;tag=8814\nCall-ID: lwsstart.dfknq234oi243099adsdfnawe3@example.com\n"
                   "CSeq: 1893884 INVITE\nVia: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw3923\n"
                   "Contact: <sip:caller@host1.example.net>\nContent-Type: application/sdp\nContent-Length: 150\n"),
       ParseStatus::BadStartLine, ""},
      {"trws SP characters at end of Request-Line",
       crlf("OPTIONS sip:remote-target@example.com SIP/2.0  \n"
            "Via: SIP/2.0/TCP host1.examle.com;branch=z9hG4bK299342093\nTo: <sip:remote-target@example.com>\n"
            "From: <sip:local-resource@example.com>;tag=329429089\nCall-ID: trws.oicu34958239neffasdhr2345r\n"
            "Accept: application/sdp\nCSeq: 238923 OPTIONS\nMax-Forwards: 70\nContent-Length: 0\n\n"),
       ParseStatus::BadStartLine, ""},
      {"escruri escaped headers in SIP Request-URI",
       invite_with("INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0\nTo: sip:user@example.com\n"
                   "From: sip:caller@example.net;tag=341518\nMax-Forwards: 7\n"
                   "Contact: <sip:caller@host39923.example.net>\n"
                   "Call-ID: escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5\nCSeq: 149209342 INVITE\n"
                   "Via: SIP/2.0/UDP host-of-the-hour.example.com;branch=z9hG4bKkdjuw\n"
                   "Content-Type: application/sdp\nContent-Length: 150\n"),
       ParseStatus::BadStartLine, ""},
      {"badaspec spaces within addr-spec",
       crlf("OPTIONS sip:user@example.org SIP/2.0\n"
            "Via: SIP/2.0/UDP host4.example.com:5060;branch=z9hG4bKkdju43234\nMax-Forwards: 70\n"
            "From: \"Bell, Alexander\" <sip:a.g.bell@example.com>;tag=433423\n"
            "To: \"Watson, Thomas\" < sip:t.watson@example.org >\n"
            "Call-ID: badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3\nAccept: application/sdp\n"
            "CSeq: 3923239 OPTIONS\nl: 0\n\n"),
       ParseStatus::BadHeaderValue, "To"},
      {"baddn non-token characters in display name",
       crlf("OPTIONS sip:t.watson@example.org SIP/2.0\n"
            "Via:     SIP/2.0/UDP c.example.com:5060;branch=z9hG4bKkdjuw\nMax-Forwards:      70\n"
            "From:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43\n"
            "To:      Watson, Thomas <sip:t.watson@example.org>\nCall-ID: baddn.31415@c.example.com\n"
            "Accept: application/sdp\nCSeq:    3923239 OPTIONS\nl: 0\n\n"),
       ParseStatus::BadHeaderValue, "From"},
      {"badvers unknown protocol version (answer 505)",
       crlf("OPTIONS sip:t.watson@example.org SIP/7.0\nVia:     SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw\n"
            "Max-Forwards:     70\nFrom:    A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe\n"
            "To:      T. Watson <sip:t.watson@example.org>\nCall-ID: badvers.31417@c.example.com\n"
            "CSeq:    1 OPTIONS\nl: 0\n\n"),
       ParseStatus::BadVersion, ""},
      {"mismatch01 start line and CSeq method mismatch",
       crlf("OPTIONS sip:user@example.com SIP/2.0\nTo: sip:j.user@example.com\n"
            "From: sip:caller@example.net;tag=34525\nMax-Forwards: 6\nCall-ID: mismatch01.dj0234sxdfl3\n"
            "CSeq: 8 INVITE\nVia: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw\nl: 0\n\n"),
       ParseStatus::CSeqMismatch, "CSeq"},
      {"mismatch02 unknown method with CSeq method mismatch",
       crlf("NEWMETHOD sip:user@example.com SIP/2.0\nTo: sip:j.user@example.com\n"
            "From: sip:caller@example.net;tag=34525\nMax-Forwards: 6\nCall-ID: mismatch02.dj0234sxdfl3\n"
            "CSeq: 8 INVITE\nContact: <sip:caller@host.example.net>\n"
            "Via: SIP/2.0/UDP host.example.net;branch=z9hG4bKkdjuw\nContent-Type: application/sdp\nl: 0\n\n"),
       ParseStatus::CSeqMismatch, "CSeq"},
      {"bigcode overlarge response code",
       crlf("SIP/2.0 4294967301 better not break the receiver\n"
            "Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe\n"
            "Call-ID: bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i\nCSeq: 353494 INVITE\n"
            "From: <sip:user@example.com>;tag=39ansfi3\nTo: <sip:user@example.edu>;tag=902jndnke3\n"
            "Content-Length: 0\nContact: <sip:user@host105.example.com>\n\n"),
       ParseStatus::BadStartLine, ""},
      // 3.3 / 3.4: transaction-layer and application-layer cases the parser itself refuses.
      {"insuf missing required header fields",
       invite_with("INVITE sip:user@example.com SIP/2.0\nCSeq: 193942 INVITE\n"
                   "Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf\nContent-Type: application/sdp\nl: 150\n"),
       ParseStatus::MissingHeader, "From"},
      {"ncl negative Content-Length",
       invite_with("INVITE sip:user@example.com SIP/2.0\nMax-Forwards: 254\nTo: sip:j.user@example.com\n"
                   "From: sip:caller@example.net;tag=32394234\nCall-ID: ncl.0ha0isndaksdj2193423r542w35\n"
                   "CSeq: 0 INVITE\nVia: SIP/2.0/UDP 192.0.2.53;branch=z9hG4bKkdjuw\n"
                   "Contact: <sip:caller@example53.example.net>\nContent-Type: application/sdp\n"
                   "Content-Length: -999\n"),
       ParseStatus::BadContentLength, "Content-Length"},
      {"multi01 multiple values in single value required fields",
       invite_with("INVITE sip:user@company.com SIP/2.0\nContact: <sip:caller@host25.example.net>\n"
                   "Via: SIP/2.0/UDP 192.0.2.25;branch=z9hG4bKkdjuw\nMax-Forwards: 70\nCSeq: 5 INVITE\n"
                   "Call-ID: multi01.98asdh@192.0.2.1\nCSeq: 59 INVITE\nCall-ID: multi01.98asdh@192.0.2.2\n"
                   "From: sip:caller@example.com;tag=3413415\nTo: sip:user@example.com\nTo: sip:other@example.net\n"
                   "From: sip:caller@example.net;tag=2923420123\nContent-Type: application/sdp\nl: 150\n"
                   "Contact: <sip:caller@host36.example.net>\nMax-Forwards: 5\n"),
       ParseStatus::BadHeaderValue, "CSeq"},
      {"mcl01 multiple Content-Length values",
       crlf("OPTIONS sip:user@example.com SIP/2.0\nVia: SIP/2.0/UDP host5.example.net;branch=z9hG4bK293423\n"
            "To: sip:user@example.com\nFrom: sip:other@example.net;tag=3923942\n"
            "Call-ID: mcl01.fhn2323orihawfdoa3o4r52o3irsdf\nCSeq: 15932 OPTIONS\nContent-Length: 13\n"
            "Max-Forwards: 60\nContent-Length: 5\nContent-Type: text/plain\n\n"
            "There's no way to know how many octets are supposed to be here.\n"),
       ParseStatus::BadContentLength, "Content-Length"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    P p(c.text);
    CHECK(p.st == c.want);
    CHECK(p.m->error_header() == std::string_view(c.header));
    // Refused on a stream too (no partial trust in a connection).
    Message sm;
    ParseStatus ss = parse(c.text, sm, Framing::Stream);
    CHECK(ss != ParseStatus::Ok);
  }
}

TEST_CASE("rfc4475: messages that parse, with the tolerance documented per case") {
  // baddate 3.1.2.11: Date not in GMT. The message parses; parse_date refuses the value.
  P baddate(invite_with("INVITE sip:user@example.com SIP/2.0\nTo: sip:user@example.com\n"
                        "From: sip:caller@example.net;tag=2234923\nMax-Forwards: 70\n"
                        "Call-ID: baddate.239423mnsadf3j23lj42--sedfnm234\nCSeq: 1392934 INVITE\n"
                        "Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw\n"
                        "Date: Fri, 01 Jan 2010 16:00:00 EST\nContact: <sip:caller@host5.example.net>\n"
                        "Content-Type: application/sdp\nContent-Length: 150\n"));
  REQUIRE(baddate.st == ParseStatus::Ok);
  int64_t t;
  int ms;
  CHECK_FALSE(parse_date(baddate.m->find(HeaderId::Date)->value, t, ms));

  // regbadct 3.1.2.12: Contact URI with '?' outside <>. Parses; parse_contact refuses it.
  P regbadct(crlf("REGISTER sip:example.com SIP/2.0\nTo: sip:user@example.com\n"
                  "From: sip:user@example.com;tag=998332\nMax-Forwards: 70\n"
                  "Call-ID: regbadct.k345asrl3fdbv@10.0.0.1\nCSeq: 1 REGISTER\n"
                  "Via: SIP/2.0/UDP 135.180.130.133:5060;branch=z9hG4bKkdjuw\n"
                  "Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E\nl: 0\n\n"));
  REQUIRE(regbadct.st == ParseStatus::Ok);
  Contact c;
  CHECK_FALSE(parse_contact(regbadct.m->find(HeaderId::Contact)->value, c));

  // regescrt 3.3.x: the same URI inside <> is fine.
  P regescrt(crlf("REGISTER sip:example.com SIP/2.0\nTo: sip:user@example.com\nFrom: sip:user@example.com;tag=8\n"
                  "Max-Forwards: 70\nCall-ID: regescrt.k345asrl3fdbv@192.0.2.1\nCSeq: 14398234 REGISTER\n"
                  "Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw\n"
                  "M: <sip:user@example.com?Route=%3Csip:sip.example.com%3E>\nL:0\n\n"));
  REQUIRE(regescrt.st == ParseStatus::Ok);
  REQUIRE(parse_contact(regescrt.m->find(HeaderId::Contact)->value, c));
  Uri cu;
  REQUIRE(parse_uri(c.addr.uri_text, cu));
  CHECK(cu.headers == "Route=%3Csip:sip.example.com%3E");

  // cparam01 / cparam02: where the unknown parameter belongs.
  P cparam01(crlf("REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP saturn.example.com:5060;branch=z9hG4bKkdjuw\n"
                  "Max-Forwards: 70\nFrom: sip:watson@example.com;tag=DkfVgjkrtMwaerKKpe\nTo: sip:watson@example.com\n"
                  "Call-ID: cparam01.70710@saturn.example.com\nCSeq: 2 REGISTER\n"
                  "Contact: sip:+19725552222@gw1.example.net;unknownparam\nl: 0\n\n"));
  REQUIRE(cparam01.st == ParseStatus::Ok);
  REQUIRE(parse_contact(cparam01.m->find(HeaderId::Contact)->value, c));
  CHECK(c.addr.params.has("unknownparam"));
  REQUIRE(parse_uri(c.addr.uri_text, cu));
  CHECK_FALSE(cu.params.has("unknownparam"));
  P cparam02(crlf("REGISTER sip:example.com SIP/2.0\nVia: SIP/2.0/UDP saturn.example.com:5060;branch=z9hG4bKkdjuw\n"
                  "Max-Forwards: 70\nFrom: sip:watson@example.com;tag=838293\nTo: sip:watson@example.com\n"
                  "Call-ID: cparam02.70710@saturn.example.com\nCSeq: 3 REGISTER\n"
                  "Contact: <sip:+19725552222@gw1.example.net;unknownparam>\nl: 0\n\n"));
  REQUIRE(cparam02.st == ParseStatus::Ok);
  REQUIRE(parse_contact(cparam02.m->find(HeaderId::Contact)->value, c));
  CHECK_FALSE(c.addr.params.has("unknownparam"));
  REQUIRE(parse_uri(c.addr.uri_text, cu));
  CHECK(cu.params.has("unknownparam"));

  // unkscm / novelsc: unknown Request-URI schemes parse (the caller answers 416).
  for (const char* ruri : {"nobodyKnowsThisScheme:totallyopaquecontent", "soap.beep://192.0.2.103:3002"}) {
    INFO(ruri);
    P p(crlf(std::string("OPTIONS ") + ruri + " SIP/2.0\nTo: sip:user@example.com\n"
             "From: sip:caller@example.net;tag=384\nMax-Forwards: 3\nCall-ID: unkscm.nasdfasser0q239nwsdfasdkl34\n"
             "CSeq: 3923423 OPTIONS\nVia: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234\n"
             "Content-Length: 0\n\n"));
    REQUIRE(p.st == ParseStatus::Ok);
    Uri u;
    REQUIRE(parse_uri(p.m->request_uri(), u));
    CHECK(u.scheme == Scheme::Other);
  }
  // unksm2: unknown schemes in To / From / Contact.
  P unksm2(crlf("REGISTER sip:example.com SIP/2.0\nTo: isbn:2983792873\nFrom: <http://www.example.com>;tag=3234233\n"
                "Call-ID: unksm2.daksdj@hyphenated-host.example.com\nCSeq: 234902 REGISTER\nMax-Forwards: 70\n"
                "Via: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bKkdjuw\nContact: <name:John_Smith>\nl: 0\n\n"));
  REQUIRE(unksm2.st == ParseStatus::Ok);
  CHECK(unksm2.m->to().uri_text == "isbn:2983792873");

  // zeromf: Max-Forwards 0 parses (a proxy answers 483).
  P zeromf(crlf("OPTIONS sip:user@example.com SIP/2.0\nTo: sip:user@example.com\nFrom: sip:caller@example.net;tag=3ghsd41\n"
                "Call-ID: zeromf.jfasdlfnm2o2l43r5u0asdfas\nCSeq: 39234321 OPTIONS\n"
                "Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw2349i\nMax-Forwards: 0\nContent-Length: 0\n\n"));
  REQUIRE(zeromf.st == ParseStatus::Ok);
  CHECK(zeromf.m->max_forwards() == 0);

  // badbranch: a branch that is only the cookie is not an RFC 3261 branch.
  P badbranch(crlf("OPTIONS sip:user@example.com SIP/2.0\nTo: sip:user@example.com\nFrom: sip:caller@example.org;tag=33242\n"
                   "Max-Forwards: 3\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK\nAccept: application/sdp\n"
                   "Call-ID: badbranch.sadonfo23i420jv0as0derf3j3n\nCSeq: 8 OPTIONS\nl: 0\n\n"));
  REQUIRE(badbranch.st == ParseStatus::Ok);
  CHECK_FALSE(badbranch.m->top_via().rfc3261_branch());

  // regaut01: an unknown authorization scheme parses; the digest server refuses it.
  P regaut01(crlf("REGISTER sip:example.com SIP/2.0\nTo: sip:j.user@example.com\n"
                  "From: sip:j.user@example.com;tag=87321hj23128\nMax-Forwards: 8\nCall-ID: regaut01.0ha0isndaksdj\n"
                  "CSeq: 9338 REGISTER\nVia: SIP/2.0/TCP 192.0.2.253;branch=z9hG4bKkdjuw\n"
                  "Authorization: NoOneKnowsThisScheme opaque-data=here\nContent-Length:0\n\n"));
  REQUIRE(regaut01.st == ParseStatus::Ok);
  DigestServerConfig cfg;
  cfg.realm = "example.com";
  cfg.secret = "0123456789abcdef";
  DigestServer srv(cfg, 0);
  CHECK(srv.verify(regaut01.m->find(HeaderId::Authorization)->value, "REGISTER", 0,
                   [](std::string_view, DigestSecret&) { return true; }) == Verdict::Malformed);

  // inv2543: an RFC 2543 INVITE (no Max-Forwards, no branch, no tags, no Content-Length on UDP).
  P inv2543(crlf("INVITE sip:UserB@example.com SIP/2.0\nVia: SIP/2.0/UDP iftgw.example.com\n"
                 "From: <sip:+13035551111@ift.client.example.net;user=phone>\n"
                 "Record-Route: <sip:UserB@example.com;maddr=ss1.example.com>\n"
                 "To: sip:+16505552222@ss1.example.net;user=phone\nCall-ID: inv2543.1717@ift.client.example.com\n"
                 "CSeq: 56 INVITE\nContent-Type: application/sdp\n\n"
                 "v=0\no=mhandley 29739 7272939 IN IP4 192.0.2.5\ns=-\nc=IN IP4 192.0.2.5\nt=0 0\nm=audio 49217 RTP/AVP 0\n"));
  REQUIRE(inv2543.st == ParseStatus::Ok);
  CHECK(inv2543.m->top_via().branch.empty());
  CHECK(inv2543.m->from_tag().empty());
  CHECK(inv2543.m->max_forwards() == -1);
  CHECK(inv2543.m->content_length() == -1);
  CHECK(inv2543.m->body().substr(0, 3) == "v=0");
  CHECK(inv2543.m->to().params.value("user") == "phone");  // addr-spec: header parameter

  // bext01, invut, sdp01, bcast: well formed; the semantics (420, 415, 488, broadcast Via) are the TU's.
  P bcast(crlf(std::string("SIP/2.0 200 OK\nVia: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923\n"
                           "Via: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK1saber23\n"
                           "Call-ID: bcast.0384840201234ksdfak3j2erwedfsASdf\nCSeq: 35 INVITE\n"
                           "From: sip:user@example.com;tag=11141343\nTo: sip:user@example.edu;tag=2229\n"
                           "Content-Length: 150\nContent-Type: application/sdp\n"
                           "Contact: <sip:user@host28.example.com>\n\n") +
               kSdp150));
  REQUIRE(bcast.st == ParseStatus::Ok);
  P bext01(crlf("OPTIONS sip:user@example.com SIP/2.0\nTo: sip:j_user@example.com\nFrom: sip:caller@example.net;tag=242etr\n"
                "Max-Forwards: 6\nCall-ID: bext01.0ha0isndaksdj\n"
                "Require: nothingSupportsThis, nothingSupportsThisEither\n"
                "Proxy-Require: noProxiesSupportThis, norDoAnyProxiesSupportThis\nCSeq: 8 OPTIONS\n"
                "Via: SIP/2.0/TLS fold-and-staple.example.com;branch=z9hG4bKkdjuw\nContent-Length: 0\n\n"));
  REQUIRE(bext01.st == ParseStatus::Ok);
  CHECK(bext01.m->find(HeaderId::Require) != nullptr);
  CHECK(bext01.m->find(HeaderId::ProxyRequire) != nullptr);
  P invut(crlf("INVITE sip:user@example.com SIP/2.0\nContact: <sip:caller@host5.example.net>\nTo: sip:j.user@example.com\n"
               "From: sip:caller@example.net;tag=8392034\nMax-Forwards: 70\nCall-ID: invut.0ha0isndaksdjadsfij34n23d\n"
               "CSeq: 235448 INVITE\nVia: SIP/2.0/UDP somehost.example.com;branch=z9hG4bKkdjuw\n"
               "Content-Type: application/unknownformat\nContent-Length: 40\n\n"
               "<audio>\n <pcmu port=\"443\"/>\n</audio>\n"));
  REQUIRE(invut.st == ParseStatus::Ok);
  CHECK(invut.m->content_type() == "application/unknownformat");
  CHECK(invut.m->body().size() == 40);
}
