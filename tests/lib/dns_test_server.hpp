// A tiny authoritative DNS server for unit tests (RFC 1035 wire format written by hand): UDP on
// 127.0.0.1, a port picked by the kernel, on the test's own libuv loop. It answers from a table
// (A, AAAA, SRV, NAPTR), NXDOMAIN for unknown names, a chosen rcode for some names, and never
// answers the names marked silent. Every question it receives is logged in `queries`.
// Also: run_until(loop, pred), which runs a loop until pred() holds (no sleeps; a guard timer
// bounds a broken test).
#pragma once

#include <uv.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace jntest {

// Runs `loop` until pred() is true or max_ms passed; returns pred(). A prepare handle checks
// pred() before each poll and stops the loop, so a callback run by a timer does not leave the
// loop blocked in its poll phase afterwards.
template <class Pred>
bool run_until(uv_loop_t* loop, Pred pred, uint64_t max_ms = 10000) {
  struct Guard {
    uv_timer_t t{};
    uv_prepare_t p{};
    bool fired = false;
    int closed = 0;
    std::function<bool()> pred;
  } g;
  g.pred = [&] { return pred(); };
  uv_timer_init(loop, &g.t);
  uv_prepare_init(loop, &g.p);
  g.t.data = g.p.data = &g;
  uv_timer_start(&g.t, [](uv_timer_t* t) {
    static_cast<Guard*>(t->data)->fired = true;
    uv_stop(t->loop);
  }, max_ms, 0);
  uv_prepare_start(&g.p, [](uv_prepare_t* p) {
    if (static_cast<Guard*>(p->data)->pred()) uv_stop(p->loop);
  });
  while (!pred() && !g.fired) uv_run(loop, UV_RUN_ONCE);
  auto closed = [](uv_handle_t* h) { ++static_cast<Guard*>(h->data)->closed; };
  uv_close(reinterpret_cast<uv_handle_t*>(&g.t), closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&g.p), closed);
  while (g.closed < 2) uv_run(loop, UV_RUN_NOWAIT);
  return pred();
}

class DnsTestServer {
 public:
  enum : uint16_t { A = 1, AAAA = 28, SRV = 33, NAPTR = 35 };

  explicit DnsTestServer(uv_loop_t* loop) {
    uv_udp_init(loop, &udp_);
    udp_.data = this;
    sockaddr_in sin{};
    uv_ip4_addr("127.0.0.1", 0, &sin);
    if (uv_udp_bind(&udp_, reinterpret_cast<const sockaddr*>(&sin), 0) != 0)
      throw std::runtime_error("dns test server: bind");
    sockaddr_storage ss{};
    int len = sizeof ss;
    uv_udp_getsockname(&udp_, reinterpret_cast<sockaddr*>(&ss), &len);
    port_ = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    uv_udp_recv_start(&udp_, &DnsTestServer::on_alloc, &DnsTestServer::on_recv);
  }
  ~DnsTestServer() {
    if (!closed_) std::abort();  // close() and run the loop first
  }

  uint16_t port() const { return port_; }
  std::string addr() const { return "127.0.0.1:" + std::to_string(port_); }

  void add_a(const std::string& name, const std::string& ip, uint32_t ttl = 300) {
    std::string rd(4, '\0');
    inet_pton(AF_INET, ip.c_str(), rd.data());
    add(name, A, rd, ttl);
  }
  void add_aaaa(const std::string& name, const std::string& ip, uint32_t ttl = 300) {
    std::string rd(16, '\0');
    inet_pton(AF_INET6, ip.c_str(), rd.data());
    add(name, AAAA, rd, ttl);
  }
  void add_srv(const std::string& name, uint16_t prio, uint16_t weight, uint16_t port,
               const std::string& target, uint32_t ttl = 300) {
    std::string rd;
    u16(rd, prio);
    u16(rd, weight);
    u16(rd, port);
    rd += encode_name(target);
    add(name, SRV, rd, ttl);
  }
  void add_naptr(const std::string& name, uint16_t order, uint16_t pref, const std::string& flags,
                 const std::string& service, const std::string& regexp,
                 const std::string& replacement, uint32_t ttl = 300) {
    std::string rd;
    u16(rd, order);
    u16(rd, pref);
    for (auto* s : {&flags, &service, &regexp}) {
      rd += static_cast<char>(s->size());
      rd += *s;
    }
    rd += encode_name(replacement);
    add(name, NAPTR, rd, ttl);
  }
  // A name that exists (NOERROR) with no records of the asked type.
  void add_empty(const std::string& name) { names_.insert(lower(name)); }
  void set_rcode(const std::string& name, uint8_t rcode) { rcodes_[lower(name)] = rcode; }  // 2 SERVFAIL, 3 NXDOMAIN
  void set_silent(const std::string& name) { silent_.insert(lower(name)); }

  // (name, type) of every question received, in order.
  std::vector<std::pair<std::string, uint16_t>> queries;
  size_t answered = 0;  // replies sent
  size_t count(const std::string& name, uint16_t type) const {
    return std::count(queries.begin(), queries.end(), std::make_pair(lower(name), type));
  }

  void close() {
    uv_close(reinterpret_cast<uv_handle_t*>(&udp_),
             [](uv_handle_t* h) { static_cast<DnsTestServer*>(h->data)->closed_ = true; });
  }
  bool closed() const { return closed_; }

 private:
  struct Rec {
    uint16_t type;
    std::string rdata;
    uint32_t ttl;
  };

  static std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  }
  static void u16(std::string& out, uint16_t v) {
    out += static_cast<char>(v >> 8);
    out += static_cast<char>(v & 0xff);
  }
  static void u32(std::string& out, uint32_t v) {
    u16(out, static_cast<uint16_t>(v >> 16));
    u16(out, static_cast<uint16_t>(v & 0xffff));
  }
  static std::string encode_name(const std::string& name) {
    std::string out;
    size_t start = 0;
    std::string n = name;
    if (!n.empty() && n.back() == '.') n.pop_back();
    while (start < n.size()) {
      size_t dot = n.find('.', start);
      if (dot == std::string::npos) dot = n.size();
      out += static_cast<char>(dot - start);
      out += n.substr(start, dot - start);
      start = dot + 1;
    }
    out += '\0';
    return out;
  }
  void add(const std::string& name, uint16_t type, std::string rdata, uint32_t ttl) {
    names_.insert(lower(name));
    records_[lower(name)].push_back({type, std::move(rdata), ttl});
  }

  static void on_alloc(uv_handle_t*, size_t, uv_buf_t* buf) {
    *buf = uv_buf_init(new char[1500], 1500);
  }
  static void on_recv(uv_udp_t* udp, ssize_t n, const uv_buf_t* buf, const sockaddr* from, unsigned) {
    auto* self = static_cast<DnsTestServer*>(udp->data);
    if (n > 0 && from) self->handle(reinterpret_cast<const unsigned char*>(buf->base), size_t(n), from);
    delete[] buf->base;
  }

  void handle(const unsigned char* q, size_t n, const sockaddr* from) {
    if (n < 12) return;
    // Question: labels (queries are never compressed), then type and class.
    size_t p = 12;
    std::string name;
    while (p < n && q[p] != 0) {
      size_t l = q[p];
      if (l > 63 || p + 1 + l > n) return;
      if (!name.empty()) name += '.';
      name.append(reinterpret_cast<const char*>(q + p + 1), l);
      p += 1 + l;
    }
    if (p + 5 > n) return;
    p += 1;
    uint16_t qtype = q[p] << 8 | q[p + 1];
    size_t qend = p + 4;
    name = lower(name);
    queries.emplace_back(name, qtype);
    if (silent_.count(name)) return;

    uint8_t rcode = 0;
    std::vector<const Rec*> answers;
    if (auto it = rcodes_.find(name); it != rcodes_.end()) {
      rcode = it->second;
    } else if (!names_.count(name)) {
      rcode = 3;  // NXDOMAIN
    } else if (auto r = records_.find(name); r != records_.end()) {
      for (auto& rec : r->second)
        if (rec.type == qtype) answers.push_back(&rec);
    }
    std::string out;
    out.append(reinterpret_cast<const char*>(q), 2);  // id
    out += static_cast<char>(0x84 | (q[2] & 0x79));   // QR, AA, opcode and RD copied
    out += static_cast<char>(0x80 | rcode);           // RA, rcode
    u16(out, 1);
    u16(out, static_cast<uint16_t>(answers.size()));
    u16(out, 0);
    u16(out, 0);
    out.append(reinterpret_cast<const char*>(q + 12), qend - 12);
    for (auto* rec : answers) {
      u16(out, 0xC00C);  // the question's name
      u16(out, rec->type);
      u16(out, 1);
      u32(out, rec->ttl);
      u16(out, static_cast<uint16_t>(rec->rdata.size()));
      out += rec->rdata;
    }
    uv_buf_t b = uv_buf_init(out.data(), static_cast<unsigned>(out.size()));
    if (uv_udp_try_send(&udp_, &b, 1, from) >= 0) ++answered;
  }

  uv_udp_t udp_{};
  uint16_t port_ = 0;
  bool closed_ = false;
  std::set<std::string> names_, silent_;
  std::map<std::string, uint8_t> rcodes_;
  std::map<std::string, std::vector<Rec>> records_;
};

}  // namespace jntest
