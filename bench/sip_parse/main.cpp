// SIP parse + build cost per message, junction::sip vs libosip2, on the same three messages:
// a REGISTER with digest credentials, an INVITE with SDP, and a 200 OK (with SDP) to an INVITE.
//
// "parse + build" = parse the message, then build what a SIP element sends next from it: for a
// request, its response (Via/From/To/Call-ID/CSeq copied, To tag, Contact); for the 200 OK, the ACK.
// junction: sip::parse + sip::Writer into a reused std::string. osip: osip_message_parse, then
// the same message built with osip's own API (clones of the headers) and osip_message_to_str, as
// eXosip does. Also "parse only" for both.
//
// Allocations are counted by interposing malloc/calloc/realloc/free in this binary (operator new
// and libosip2's osip_malloc both end in malloc), so both sides are counted the same way.
#include <junction/sip/builder.hpp>
#include <junction/sip/message.hpp>

#include <atomic>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#ifdef JN_BENCH_OSIP
#include <osipparser2/osip_parser.h>
#endif

// ---- allocation counter ----
extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void __libc_free(void*);
}
static size_t g_allocs = 0;
extern "C" void* malloc(size_t n) {
  ++g_allocs;
  return __libc_malloc(n);
}
extern "C" void* calloc(size_t a, size_t b) {
  ++g_allocs;
  return __libc_calloc(a, b);
}
extern "C" void* realloc(void* p, size_t n) {
  ++g_allocs;
  return __libc_realloc(p, n);
}
extern "C" void free(void* p) { __libc_free(p); }

namespace sip = junction::sip;

namespace {

const char kRegister[] =
    "REGISTER sip:3402000000 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.168.1.64:5060;rport;branch=z9hG4bK1027384756\r\n"
    "From: <sip:34020000001320000001@3402000000>;tag=1873921324\r\n"
    "To: <sip:34020000001320000001@3402000000>\r\n"
    "Call-ID: 1837465928@192.168.1.64\r\n"
    "CSeq: 2 REGISTER\r\n"
    "Contact: <sip:34020000001320000001@192.168.1.64:5060>\r\n"
    "Authorization: Digest username=\"34020000001320000001\", realm=\"3402000000\", "
    "nonce=\"00000000656f8a2d0000656f8a2d0001c3b1e4e0a1d94f7e8d2b6a5c4f3e2d1c\", uri=\"sip:3402000000\", "
    "response=\"2f9c7e5d1b3a49687f0e1d2c3b4a5968\", algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc=00000001\r\n"
    "Max-Forwards: 70\r\n"
    "User-Agent: IP Camera\r\n"
    "Expires: 3600\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

const char kInvite[] =
    "INVITE sip:34020000001320000001@192.168.1.64:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.168.1.10:5060;rport;branch=z9hG4bK3e7a91c4d2f80b65\r\n"
    "From: <sip:34020000002000000001@3402000000>;tag=64a0c7b2\r\n"
    "To: <sip:34020000001320000001@3402000000>\r\n"
    "Call-ID: 9b1f6c2e4d8a4f3b@192.168.1.10\r\n"
    "CSeq: 20 INVITE\r\n"
    "Contact: <sip:34020000002000000001@192.168.1.10:5060>\r\n"
    "Max-Forwards: 70\r\n"
    "Subject: 34020000001320000001:0100000001,34020000002000000001:0\r\n"
    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, MESSAGE, SUBSCRIBE, NOTIFY\r\n"
    "Supported: timer\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 183\r\n"
    "\r\n"
    "v=0\r\n"
    "o=34020000002000000001 0 0 IN IP4 192.168.1.10\r\n"
    "s=Play\r\n"
    "c=IN IP4 192.168.1.10\r\n"
    "t=0 0\r\n"
    "m=video 30000 RTP/AVP 96 97 98\r\n"
    "a=recvonly\r\n"
    "a=rtpmap:96 PS/90000\r\n"
    "a=rtpmap:97 MPEG4/90000\r\n"
    "y=0100000001\r\n";

const char kOk[] =
    "SIP/2.0 200 OK\r\n"
    "Via: SIP/2.0/UDP 192.168.1.10:5060;rport=5060;received=192.168.1.10;branch=z9hG4bK3e7a91c4d2f80b65\r\n"
    "From: <sip:34020000002000000001@3402000000>;tag=64a0c7b2\r\n"
    "To: <sip:34020000001320000001@3402000000>;tag=1948304756\r\n"
    "Call-ID: 9b1f6c2e4d8a4f3b@192.168.1.10\r\n"
    "CSeq: 20 INVITE\r\n"
    "Contact: <sip:34020000001320000001@192.168.1.64:5060>\r\n"
    "Record-Route: <sip:192.168.1.1;lr>\r\n"
    "User-Agent: IP Camera\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 163\r\n"
    "\r\n"
    "v=0\r\n"
    "o=34020000001320000001 0 0 IN IP4 192.168.1.64\r\n"
    "s=Play\r\n"
    "c=IN IP4 192.168.1.64\r\n"
    "t=0 0\r\n"
    "m=video 15060 RTP/AVP 96\r\n"
    "a=sendonly\r\n"
    "a=rtpmap:96 PS/90000\r\n"
    "y=0100000001\r\n"
    "f=\r\n";

// Thread CPU time, not wall time: the machine is shared, and time spent preempted is not the
// parser's (both sides are measured the same way).
double cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
}

struct Result {
  double ns = 0;
  double allocs = 0;
};

template <typename F>
Result measure(size_t iters, F&& f) {
  for (size_t i = 0; i < iters / 10 + 1; ++i) f();  // warm up (buffers reach their capacity)
  Result best{1e18, 0};
  for (int round = 0; round < 5; ++round) {
    size_t a0 = g_allocs;
    double t0 = cpu_ns();
    for (size_t i = 0; i < iters; ++i) f();
    double ns = (cpu_ns() - t0) / double(iters);
    if (ns < best.ns) best.ns = ns;
    best.allocs = double(g_allocs - a0) / double(iters);
  }
  return best;
}

std::atomic<size_t> g_sink{0};  // keeps the work observable

// junction: parse, then build the next message.
struct Junction {
  std::unique_ptr<sip::Message> m = std::make_unique<sip::Message>();
  std::string out;
  bool parse_only(std::string_view text) {
    bool ok = sip::parse(text, *m) == sip::ParseStatus::Ok;
    g_sink.fetch_add(m->headers().size(), std::memory_order_relaxed);
    return ok;
  }
  bool parse_build(std::string_view text) {
    if (sip::parse(text, *m) != sip::ParseStatus::Ok) return false;
    sip::Writer w(out);
    if (m->is_request()) {
      sip::start_response(w, *m, 200, {}, "5f2e9a1c");
      w.header("Contact", "<sip:3402000000@192.168.1.10:5060>");
      if (m->method() == "REGISTER") w.header("Expires", int64_t(3600));
      w.finish();
    } else {
      // ACK for a 2xx: a new branch (fixed here: the bench measures building, not the CSPRNG).
      w.request_line("ACK", m->find(sip::HeaderId::Contact) ? "sip:34020000001320000001@192.168.1.64:5060" : "");
      w.via("UDP", "192.168.1.10", 5060, "z9hG4bK7c1d2e3f4a5b6978");
      w.header("From", m->find(sip::HeaderId::From)->value);
      w.header("To", m->find(sip::HeaderId::To)->value);
      w.header("Call-ID", m->call_id());
      std::string& o = w.out();
      o.append("CSeq: ");
      char buf[16];
      int n = std::snprintf(buf, sizeof buf, "%u", m->cseq().seq);
      o.append(buf, size_t(n));
      o.append(" ACK\r\n");
      w.header("Max-Forwards", int64_t(70));
      w.finish();
    }
    g_sink.fetch_add(out.size(), std::memory_order_relaxed);
    return true;
  }
};

#ifdef JN_BENCH_OSIP
struct Osip {
  bool parse_only(std::string_view text) {
    osip_message_t* m = nullptr;
    osip_message_init(&m);
    bool ok = osip_message_parse(m, text.data(), text.size()) == 0;
    g_sink.fetch_add(size_t(osip_list_size(&m->headers)), std::memory_order_relaxed);
    osip_message_free(m);
    return ok;
  }
  bool parse_build(std::string_view text) {
    osip_message_t* m = nullptr;
    osip_message_init(&m);
    if (osip_message_parse(m, text.data(), text.size()) != 0) {
      osip_message_free(m);
      return false;
    }
    osip_message_t* r = nullptr;
    osip_message_init(&r);
    if (MSG_IS_REQUEST(m)) {
      osip_message_set_version(r, osip_strdup("SIP/2.0"));
      osip_message_set_status_code(r, 200);
      osip_message_set_reason_phrase(r, osip_strdup("OK"));
      osip_list_clone(&m->vias, &r->vias, (int (*)(void*, void**))&osip_via_clone);
      osip_from_clone(m->from, &r->from);
      osip_to_clone(m->to, &r->to);
      osip_to_set_tag(r->to, osip_strdup("5f2e9a1c"));
      osip_call_id_clone(m->call_id, &r->call_id);
      osip_cseq_clone(m->cseq, &r->cseq);
      osip_message_set_contact(r, "<sip:3402000000@192.168.1.10:5060>");
      if (std::strcmp(m->sip_method, "REGISTER") == 0) osip_message_set_expires(r, "3600");
    } else {
      osip_message_set_method(r, osip_strdup("ACK"));
      osip_message_set_version(r, osip_strdup("SIP/2.0"));
      osip_uri_t* u = nullptr;
      osip_uri_init(&u);
      osip_uri_parse(u, "sip:34020000001320000001@192.168.1.64:5060");
      osip_message_set_uri(r, u);
      osip_message_set_via(r, "SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK7c1d2e3f4a5b6978;rport");
      osip_from_clone(m->from, &r->from);
      osip_to_clone(m->to, &r->to);
      osip_call_id_clone(m->call_id, &r->call_id);
      osip_cseq_t* cs = nullptr;
      osip_cseq_init(&cs);
      osip_cseq_set_number(cs, osip_strdup(m->cseq->number));
      osip_cseq_set_method(cs, osip_strdup("ACK"));
      r->cseq = cs;
      osip_message_set_max_forwards(r, "70");
    }
    osip_message_set_content_length(r, "0");
    char* out = nullptr;
    size_t len = 0;
    bool ok = osip_message_to_str(r, &out, &len) == 0;
    g_sink.fetch_add(len, std::memory_order_relaxed);
    osip_free(out);
    osip_message_free(r);
    osip_message_free(m);
    return ok;
  }
};
#endif

}  // namespace

int main(int argc, char** argv) {
  size_t iters = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 200000;
  struct Msg {
    const char* name;
    std::string_view text;
  } msgs[] = {{"REGISTER", kRegister}, {"INVITE+SDP", kInvite}, {"200 OK+SDP", kOk}};
#ifdef JN_BENCH_OSIP
  parser_init();
#endif
  Junction j;
  std::printf("%-12s %-12s %12s %12s %12s %12s %8s\n", "message", "op", "junction ns", "allocs", "osip ns", "allocs",
              "ratio");
  for (auto& msg : msgs) {
    if (!j.parse_build(msg.text)) {
      std::fprintf(stderr, "junction refused %s\n", msg.name);
      return 1;
    }
    for (int op = 0; op < 2; ++op) {
      Result rj = measure(iters, [&] { op == 0 ? j.parse_only(msg.text) : j.parse_build(msg.text); });
      Result ro{};
#ifdef JN_BENCH_OSIP
      Osip o;
      if (!o.parse_build(msg.text)) {
        std::fprintf(stderr, "osip refused %s\n", msg.name);
        return 1;
      }
      ro = measure(iters / 4, [&] { op == 0 ? o.parse_only(msg.text) : o.parse_build(msg.text); });
#endif
      std::printf("%-12s %-12s %12.0f %12.2f %12.0f %12.2f %7.1fx\n", msg.name, op == 0 ? "parse" : "parse+build",
                  rj.ns, rj.allocs, ro.ns, ro.allocs, ro.ns > 0 ? ro.ns / rj.ns : 0.0);
    }
  }
  return 0;
}
