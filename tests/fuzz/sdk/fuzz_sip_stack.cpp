// fuzz_sip_stack: random sequences of SIP traffic through a whole Stack over the fake
// environment: raw and templated requests and responses (retransmitted, reordered, duplicated),
// client requests, CANCELs, clock jumps, TCP frames and a save/restore into a fresh stack.
// Invariants (abort when broken):
//   - every message the stack sends, other than its 400/505 answers to bad input and the CRLF
//     pong, parses (the builders never produce what our own parser refuses);
//   - a server transaction's request reaches the user once (retransmissions are absorbed);
//   - once every request is answered and the clock runs 10 minutes on, no transaction is left
//     and the environment timer is disarmed;
//   - with stateless_register (the input's last byte odd), a REGISTER's id answers a final
//     response during on_request only: a provisional one is refused, a late one finds nothing
//     and sends nothing.
#include <junction/sip/stack.hpp>

#include "../../unit/sip_fake_env.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <vector>

using namespace junction::sip;
using junction::sip::testing::FakeEnv;

namespace {

struct Input {
  const uint8_t* p;
  size_t n;
  uint8_t byte() {
    if (!n) return 0;
    --n;
    return *p++;
  }
  std::string bytes(size_t len) {
    len = std::min(len, n);
    std::string s(reinterpret_cast<const char*>(p), len);
    p += len;
    n -= len;
    return s;
  }
};

struct User : StackUser {
  Stack* stack = nullptr;
  Input* in = nullptr;
  std::vector<TxnId> pending;        // server transactions not answered yet
  std::vector<TxnId> late;           // stateless ids, gone once on_request returned
  std::set<TxnId> seen;
  void on_request(TxnId id, const Message&, const Flow&) override {
    if (id == 0) return;  // an ACK
    // (a stateless id lives for this call only: a restored stack may hand out the same again)
    if (!Stack::is_stateless(id) && !seen.insert(id).second) {
      std::fprintf(stderr, "server transaction %llu delivered twice\n", (unsigned long long)id);
      std::abort();
    }
    uint8_t b = in->byte();
    static const int codes[] = {0, 100, 180, 200, 200, 401, 486, 500};
    int code = codes[b % 8];
    if (Stack::is_stateless(id)) {
      jn_status st = stack->respond(id, code ? code : 200, {}, "uas");
      if (st != ((code && code < 200) ? JN_ERR_INVALID : JN_OK)) {
        std::fprintf(stderr, "stateless respond %d returned %d\n", code, int(st));
        std::abort();
      }
      if (code && code < 200) stack->respond(id, 200, {}, "uas");
      late.push_back(id);
      return;
    }
    if (code == 0) {
      pending.push_back(id);  // answered later (or cancelled)
      return;
    }
    stack->respond(id, code, {}, "uas");
    if (code < 200) pending.push_back(id);
  }
  void on_response(TxnId, int, const Message*) override {}
};

void check_sent(FakeEnv& env, size_t from) {
  for (size_t i = from; i < env.sent.size(); ++i) {
    const std::string& b = env.sent[i].bytes;
    if (b == "\r\n" || b.rfind("SIP/2.0 400 ", 0) == 0 || b.rfind("SIP/2.0 505 ", 0) == 0) continue;
    Message m;
    ParseStatus st = parse(b, m);
    if (st != ParseStatus::Ok) {
      std::fprintf(stderr, "the stack sent a message its parser refuses (%s):\n%s\n", to_string(st), b.c_str());
      std::abort();
    }
  }
}

std::string request(std::string_view method, int branch, int cseq, bool to_tag, std::string_view extra) {
  std::string r = std::string(method) + " sip:svc@127.0.0.1 SIP/2.0\r\n";
  r += "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKf" + std::to_string(branch) + ";rport\r\n";
  r += "From: <sip:a@127.0.0.1>;tag=ft\r\nTo: <sip:svc@127.0.0.1>" + std::string(to_tag ? ";tag=uas" : "") + "\r\n";
  r += "Call-ID: fz" + std::to_string(branch % 2) + "\r\nCSeq: " + std::to_string(cseq) + " " + std::string(method) + "\r\n";
  r += "Contact: <sip:a@127.0.0.1:5070>\r\n" + std::string(extra) + "Content-Length: 0\r\n\r\n";
  return r;
}

std::string response(int code, std::string_view method, int branch, int cseq) {
  std::string r = "SIP/2.0 " + std::to_string(code) + " R\r\n";
  r += "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKc" + std::to_string(branch) + "\r\n";
  r += "From: <sip:us@127.0.0.1>;tag=us\r\nTo: <sip:them@127.0.0.1>" + std::string(code > 100 ? ";tag=them" : "") + "\r\n";
  r += "Call-ID: cl" + std::to_string(branch) + "\r\nCSeq: " + std::to_string(cseq) + " " + std::string(method) + "\r\n";
  r += "Contact: <sip:them@127.0.0.1:5080>\r\nContent-Length: 0\r\n\r\n";
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 8192) return 0;
  Input in{data, size};
  FakeEnv env;
  User user;
  user.in = &in;
  StackConfig cfg;
  cfg.timers.timer_c_ms = 60000;
  cfg.stateless_register = size && (data[size - 1] & 1);
  auto stack = std::make_unique<Stack>(env, user, cfg);
  user.stack = stack.get();
  env.on_wake = [&] { stack->on_timer(); };
  std::vector<TxnId> clients;
  int next_branch = 0;
  static const char* methods[] = {"INVITE", "REGISTER", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO", "SUBSCRIBE"};
  static const int codes[] = {100, 180, 183, 200, 401, 408, 486, 487, 503, 603};
  while (in.n) {
    size_t before = env.sent.size();
    uint8_t op = in.byte();
    switch (op % 9) {
      case 0: {  // a raw datagram
        std::string b = in.bytes(in.byte() * 4u);
        stack->on_datagram(b, junction::sip::testing::udp_flow(5000 + in.byte() % 4));
        break;
      }
      case 1: {  // a raw TCP frame
        std::string b = in.bytes(in.byte() * 4u);
        stack->on_stream_message(b, junction::sip::testing::tcp_flow(5070, 1 + in.byte() % 3));
        break;
      }
      case 2: {  // a templated request (retransmissions and reorderings come from repeated picks)
        uint8_t a = in.byte(), b = in.byte();
        std::string_view m = methods[a % 8];
        std::string extra = (b & 0x40) ? "Record-Route: <sip:p.example;lr>\r\n" : "";
        std::string r = request(m, b % 4, 1 + (b >> 2) % 3, (a & 0x80) != 0, extra);
        if (a & 0x40)
          stack->on_stream_message(r, junction::sip::testing::tcp_flow(5070, 1));
        else
          stack->on_datagram(r, junction::sip::testing::udp_flow(5070));
        break;
      }
      case 3: {  // a templated response to one of our client transactions
        uint8_t a = in.byte(), b = in.byte();
        if (next_branch == 0) break;
        int br = b % next_branch;
        stack->on_datagram(response(codes[a % 10], (a & 0x80) ? "OPTIONS" : ((a & 0x40) ? "CANCEL" : "INVITE"), br, 1),
                           junction::sip::testing::udp_flow(5080));
        break;
      }
      case 4: {  // we send a request
        uint8_t a = in.byte();
        int br = next_branch++;
        std::string_view m = (a & 1) ? "OPTIONS" : "INVITE";
        std::string r = std::string(m) + " sip:them@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKc" +
                        std::to_string(br) + "\r\nFrom: <sip:us@127.0.0.1>;tag=us\r\nTo: <sip:them@127.0.0.1>\r\nCall-ID: cl" +
                        std::to_string(br) + "\r\nCSeq: 1 " + std::string(m) + "\r\nContact: <sip:us@127.0.0.1:5060>\r\nContent-Length: 0\r\n\r\n";
        Flow f = (a & 2) ? junction::sip::testing::tcp_flow(5080, 9) : junction::sip::testing::udp_flow(5080);
        if (TxnId id = stack->send_request(r, f)) clients.push_back(id);
        break;
      }
      case 5:  // time passes
        env.advance(in.byte() * 50u);
        break;
      case 6:  // cancel one of ours
        if (!clients.empty()) stack->cancel(clients[in.byte() % clients.size()]);
        break;
      case 7: {  // answer a pending server transaction
        if (!user.late.empty()) {  // a stateless id after the fact: refused, nothing sent
          size_t sent = env.sent.size();
          if (stack->respond(user.late[in.byte() % user.late.size()], 200) != JN_ERR_NOT_FOUND || env.sent.size() != sent) {
            std::fprintf(stderr, "a late answer to a stateless REGISTER was not refused\n");
            std::abort();
          }
        }
        if (user.pending.empty()) break;
        size_t i = in.byte() % user.pending.size();
        TxnId id = user.pending[i];
        user.pending.erase(user.pending.begin() + i);
        stack->respond(id, (in.byte() & 1) ? 200 : 404, {}, "uas");
        break;
      }
      case 8: {  // hot reload: save, a fresh stack restores
        std::string saved = stack->save();
        auto next = std::make_unique<Stack>(env, user, cfg);
        std::string err;
        if (!next->restore(saved, err)) {
          std::fprintf(stderr, "restore of our own save failed: %s\n", err.c_str());
          std::abort();
        }
        stack = std::move(next);
        user.stack = stack.get();
        break;
      }
    }
    check_sent(env, before);
  }
  // Answer what is left, then let every timer run out.
  size_t before = env.sent.size();
  for (TxnId id : user.pending) stack->respond(id, 500, {}, "uas");
  user.pending.clear();
  env.advance(600000);
  check_sent(env, before);
  if (stack->transactions().size() != 0) {
    std::fprintf(stderr, "%zu transaction(s) left after every timer ran out\n", stack->transactions().size());
    std::abort();
  }
  if (env.wake != UINT64_MAX) {
    std::fprintf(stderr, "the env timer is still armed with nothing to do\n");
    std::abort();
  }
  return 0;
}
