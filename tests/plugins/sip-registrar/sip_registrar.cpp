// sip-registrar: a test plugin built only on sdk/sip. It is
//   - a digest registrar (users from its conf; 401 challenge, 403 for a wrong password, an
//     unknown user or a replayed nonce-count; bindings remember the flow they came over, so a
//     device registered over TCP is reached over that same connection);
//   - a UAS: an INVITE gets 100 (from the transaction layer), 180 and 200 with SDP; ACK and BYE
//     end it; a CANCEL ends it with 487;
//   - a UAC driven by admin commands: "call" sends an INVITE to an IP literal or to a name the
//     core resolves (RFC 3263, JN_DNS_SIP), answering 401/407 when uac_user is
//     set), ACKs its 2xx; "bye" ends any call from our side; "message" sends a MESSAGE to a
//     registered user over its binding's flow.
// It keeps transactions, dialogs, calls and bindings across a hot reload.
//
// conf: udp_listen (required, "ip:port"), tcp_listen (optional), realm ("junction"),
//       users (table user = password), generated_users (0) / generated_prefix ("user") /
//       generated_password ("secret"): extra users user0..userN-1 for the benchmark,
//       nonce_secret (random when absent), nonce_ttl_s (300), algorithm ("MD5"),
//       min_expires (60), max_expires (3600), t1_ms (500), t2_ms (4000), t4_ms (5000),
//       uac_user / uac_password (answer challenges to our INVITEs), log_each (true: a log line
//       per REGISTER; the benchmark turns it off), stateless_register (false: REGISTERs get
//       RFC 3261 server transactions; true: the stack's stateless REGISTER path, RFC 3261
//       §8.2.7, where a retransmission is answered by running the registrar again).
#include <junction/plugin.hpp>
#include <junction/sip/auth.hpp>
#include <junction/sip/dialog.hpp>
#include <junction/sip/host_env.hpp>
#include <junction/sip/stack.hpp>
#include <junction/util/addr.hpp>
#include <junction/util/random.hpp>
#include <junction/util/state.hpp>

#include <algorithm>
#include <map>
#include <unordered_map>

namespace {
using junction::sdk::Host;
using junction::sdk::to_sv;
using nlohmann::json;
namespace sip = junction::sip;
namespace util = junction::util;

constexpr uint64_t kTimerCookie = 0x5150000000000001ull;
constexpr uint64_t kTcpCookie = 0x5150000000000002ull;
constexpr std::string_view kSdp =
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

struct Binding {
  std::string contact;  // the Contact URI
  uint64_t expires_at = 0;
  sip::Flow flow;       // where the REGISTER came from (its real source and connection)
};

// A user: HA1 (never the password) and the bindings of the AOR it registers (user@host of its
// To). Keeping them together makes a REGISTER one table lookup (the digest check finds the
// account, the bindings come with it); an AOR of the same user under another host is kept in
// other_bindings_.
struct Account {
  std::string ha1;
  std::string aor;  // empty: no bindings yet
  std::vector<Binding> bindings;
};

struct Call {
  uint64_t n = 0;
  bool uac = false;
  std::string state;          // "calling", "ringing", "answered", "ended", "failed"
  std::string dialog;         // DialogSet key once there is one
  sip::TxnId invite = 0;      // UAC: our INVITE; UAS: the INVITE server transaction
  std::string invite_bytes;   // UAC: the INVITE as sent (for the dialog and a retry with credentials)
  sip::Flow flow;
  uint32_t invite_cseq = 0;
  bool auth_tried = false;
};

class SipRegistrar : public junction::sdk::Plugin, public sip::StackUser {
 public:
  SipRegistrar(Host h, const jn_create_args&) : Plugin(h), env_(h, kTimerCookie, kTcpCookie) {
    json c = h.config();
    udp_listen_ = c.at("udp_listen").get<std::string>();
    tcp_listen_ = c.value("tcp_listen", std::string());
    jn_addr a{};
    if (!util::parse_addr(udp_listen_, a)) throw std::runtime_error("udp_listen: not an ip:port: " + udp_listen_);
    sip::StackConfig sc;
    sc.host = util::format_ip(a);
    sc.udp_port = a.port;
    sc.tcp_port = a.port;
    if (!tcp_listen_.empty()) {
      jn_addr t{};
      if (!util::parse_addr(tcp_listen_, t)) throw std::runtime_error("tcp_listen: not an ip:port: " + tcp_listen_);
      sc.tcp_port = t.port;
    }
    sc.timers.t1_ms = c.value("t1_ms", 500u);
    sc.timers.t2_ms = c.value("t2_ms", 4000u);
    sc.timers.t4_ms = c.value("t4_ms", 5000u);
    sc.user_agent = "junction-sip-registrar";
    sc.stateless_register = c.value("stateless_register", false);
    stack_ = std::make_unique<sip::Stack>(env_, *this, sc);
    env_.attach(stack_.get());

    sip::DigestServerConfig dc;
    dc.realm = c.value("realm", std::string("junction"));
    dc.secret = c.value("nonce_secret", std::string());
    if (dc.secret.empty() && !util::random_bytes(32, dc.secret)) throw std::runtime_error("no randomness for the nonce secret");
    dc.nonce_ttl_s = c.value("nonce_ttl_s", 300u);
    std::string alg = c.value("algorithm", std::string("MD5"));
    if (!sip::parse_algorithm(alg, dc.algorithm)) throw std::runtime_error("algorithm: unknown: " + alg);
    // The store keeps HA1 = H(user:realm:password), as a registrar's database would: the
    // password is never kept, and each check hashes one thing less.
    auto add_user = [&](const std::string& u, const std::string& pw) { users_[u].ha1 = sip::digest_ha1(dc.algorithm, u, dc.realm, pw); };
    if (c.contains("users") && c["users"].is_object())
      for (auto& [u, p] : c["users"].items()) add_user(u, p.get<std::string>());
    int gen = c.value("generated_users", 0);
    std::string prefix = c.value("generated_prefix", std::string("user"));
    std::string gpw = c.value("generated_password", std::string("secret"));
    for (int i = 0; i < gen; ++i) add_user(prefix + std::to_string(i), gpw);
    auth_ = std::make_unique<sip::DigestServer>(dc, now_s());
    min_expires_ = c.value("min_expires", 60u);
    max_expires_ = c.value("max_expires", 3600u);
    uac_user_ = c.value("uac_user", std::string());
    uac_password_ = c.value("uac_password", std::string());
    log_each_ = c.value("log_each", true);
  }

  jn_status start() override {
    jn_status st = env_.listen_udp(udp_listen_);
    if (st != JN_OK) {
      host().set_error("udp_listen " + udp_listen_ + " failed");
      return st;
    }
    if (!tcp_listen_.empty() && (st = env_.listen_tcp(tcp_listen_)) != JN_OK) {
      host().set_error("tcp_listen " + tcp_listen_ + " failed");
      return st;
    }
    host().info("sip-registrar: listening on udp " + udp_listen_ + (tcp_listen_.empty() ? "" : " and tcp " + tcp_listen_));
    return JN_OK;
  }

  // --- hooks -----------------------------------------------------------------------------------
  void on_udp(jn_handle s, uint64_t, const jn_datagram* d, size_t n) override { env_.on_udp(s, d, n); }
  void on_tcp(const jn_tcp_event& ev) override { env_.on_tcp(ev); }
  void on_timer(jn_handle t, uint64_t c) override { env_.on_timer(t, c); }
  void on_dns(const jn_dns_result& r) override { env_.on_dns(r); }

  // --- StackUser -------------------------------------------------------------------------------
  void on_request(sip::TxnId id, const sip::Message& m, const sip::Flow& from) override {
    std::string_view method = m.method();
    if (method == "REGISTER") return on_register(id, m, from);
    if (method == "ACK") return on_ack(m, from);
    if (!m.to_tag().empty()) return in_dialog(id, m, from);
    if (method == "INVITE") return on_invite(id, m, from);
    if (method == "OPTIONS") {
      stack_->respond(id, 200, {}, stack_->new_tag(), "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, MESSAGE, INFO\r\n");
      return;
    }
    if (method == "MESSAGE") {
      host().info("sip-registrar: MESSAGE from " + util::format_addr(from.peer) + ": " + std::string(m.body()));
      stack_->respond(id, 200, {}, stack_->new_tag());
      return;
    }
    stack_->respond(id, 405, {}, stack_->new_tag(), "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, MESSAGE, INFO\r\n");
  }

  void on_response(sip::TxnId id, int status, const sip::Message* m) override {
    auto it = by_txn_.find(id);
    if (it == by_txn_.end()) return;
    auto cit = calls_.find(it->second);
    if (cit == calls_.end()) return;
    Call& call = cit->second;
    std::string_view method = m ? m->cseq().method : std::string_view("INVITE");
    if (call.invite != id) {  // BYE / re-INVITE / MESSAGE of this call
      host().info("sip-registrar: call " + std::to_string(call.n) + " " + std::string(method) + " answered " + std::to_string(status));
      if (method == "BYE" || !m) {
        by_txn_.erase(it);
        end_call(call, "ended");
      }
      return;
    }
    if (!m) {  // 408 / 503 from the stack
      host().info("sip-registrar: call " + std::to_string(call.n) + " failed " + std::to_string(status) + " (no answer)");
      by_txn_.erase(it);
      end_call(call, "failed");
      return;
    }
    if ((status == 401 || status == 407) && !call.auth_tried && !uac_user_.empty()) return retry_with_auth(call, *m, status);
    if (status > 100 && status < 300 && !m->to_tag().empty()) {
      sip::Dialog* d = dialogs_.find(*m);
      if (!d) {
        sip::Dialog nd;
        std::string err;
        if (sip::Dialog::from_response(call.invite_bytes, *m, call.flow, stack_->contact(call.flow.proto), nd, &err)) {
          call.dialog = nd.key();
          d = dialogs_.add(std::move(nd));
        } else {
          host().warn("sip-registrar: no dialog from the response: " + err);
        }
      } else {
        d->on_response(*m);
      }
      if (status < 200) {
        call.state = "ringing";
        host().info("sip-registrar: call " + std::to_string(call.n) + " ringing (" + std::to_string(status) + ")");
      } else if (d) {
        bool first = call.state != "answered";
        call.state = "answered";
        std::string ack = d->ack(*stack_, call.invite_cseq);
        stack_->send_stateless(ack, d->flow);  // every 2xx (retransmissions too) is ACKed
        if (first) host().info("sip-registrar: call " + std::to_string(call.n) + " answered, ACK sent");
      }
      return;
    }
    if (status >= 300) {
      host().info("sip-registrar: call " + std::to_string(call.n) + " failed " + std::to_string(status));
      by_txn_.erase(it);
      end_call(call, "failed");
    }
  }

  void on_cancelled(sip::TxnId id) override {
    auto it = by_txn_.find(id);
    if (it == by_txn_.end()) return;
    auto cit = calls_.find(it->second);
    by_txn_.erase(it);
    if (cit != calls_.end()) {
      host().info("sip-registrar: call " + std::to_string(cit->second.n) + " cancelled by the caller");
      end_call(cit->second, "cancelled");
    }
  }

  void on_ack_timeout(sip::TxnId id) override {
    auto it = by_txn_.find(id);
    if (it == by_txn_.end()) return;
    auto cit = calls_.find(it->second);
    if (cit != calls_.end()) {
      host().warn("sip-registrar: call " + std::to_string(cit->second.n) + ": no ACK for our final response; ending it");
      if (cit->second.state == "answered") send_bye(cit->second);
      else end_call(cit->second, "failed");
    }
  }

  void on_connection_closed(jn_handle conn) override {
    size_t n = 0;
    for_each_list([&](const std::string&, std::vector<Binding>& list) {
      for (auto b = list.begin(); b != list.end();)
        if (b->flow.proto == sip::Proto::Tcp && b->flow.conn == conn) {
          b = list.erase(b);
          ++n;
        } else {
          ++b;
        }
    });
    std::erase_if(other_bindings_, [](const auto& kv) { return kv.second.empty(); });
    if (n) host().info("sip-registrar: connection closed: " + std::to_string(n) + " binding(s) removed");
  }

  // --- admin -------------------------------------------------------------------------------------
  void on_admin(const jn_admin_request& req) override {
    std::string verb(to_sv(req.verb));
    std::string_view text = to_sv(req.body);
    json body = text.empty() ? json::object() : json::parse(text, nullptr, false);
    if (body.is_discarded() || !body.is_object()) return reply(req, 400, {{"error", "the body must be a JSON object"}});
    try {
      if (verb == "call") return admin_call(req, body);
      if (verb == "bye") {
        auto it = calls_.find(body.at("call").get<uint64_t>());
        if (it == calls_.end()) return reply(req, 404, {{"error", "no such call"}});
        if (it->second.state != "answered") return reply(req, 409, {{"error", "the call is " + it->second.state}});
        send_bye(it->second);
        return reply(req, 200, {{"sent", "BYE"}});
      }
      if (verb == "message") return admin_message(req, body);
      if (verb == "calls") {
        json a = json::array();
        for (auto& [n, c] : calls_) a.push_back({{"call", n}, {"uac", c.uac}, {"state", c.state}});
        return reply(req, 200, a);
      }
      if (verb == "bindings") {
        json o = json::object();
        uint64_t now = host().now_ms();
        for_each_list([&](const std::string& aor, std::vector<Binding>& list) {
          for (auto& b : list)
            if (b.expires_at > now)
              o[aor].push_back({{"contact", b.contact},
                                {"expires_in", (b.expires_at - now) / 1000},
                                {"transport", std::string(sip::proto_name(b.flow.proto))},
                                {"source", util::format_addr(b.flow.peer)}});
        });
        return reply(req, 200, o);
      }
      if (verb == "stats") {
        auto& k = stack_->counters();
        return reply(req, 200, {{"registers", registers_},   {"register_ok", register_ok_}, {"rx_requests", k.rx_requests},
                                {"rx_bad", k.rx_bad},        {"transactions", stack_->transactions().size()},
                                {"dialogs", dialogs_.size()}});
      }
    } catch (const json::exception& e) {
      return reply(req, 400, {{"error", std::string("bad body: ") + e.what()}});
    }
    reply(req, 404, {{"error", "unknown command " + verb}});
  }

  // --- hot reload --------------------------------------------------------------------------------
  jn_status save_state(std::string& out) override {
    util::StateOut s;
    s["stack"] = stack_->save();
    s["env"] = env_.save();
    s["dialogs"] = dialogs_.to_json();
    json calls = json::array();
    for (auto& [n, c] : calls_)
      calls.push_back({{"n", c.n}, {"uac", c.uac}, {"state", c.state}, {"dialog", util::hex_encode(c.dialog)}, {"invite", c.invite},
                       {"bytes", util::hex_encode(c.invite_bytes)}, {"proto", int(c.flow.proto)}, {"peer", util::format_addr(c.flow.peer)},
                       {"conn", c.flow.conn}, {"cseq", c.invite_cseq}, {"auth", c.auth_tried}});
    s["calls"] = calls;
    s["next_call"] = next_call_;
    json b = json::object();
    for_each_list([&](const std::string& aor, std::vector<Binding>& list) {
      for (auto& x : list)
        b[aor].push_back({{"contact", x.contact}, {"at", x.expires_at}, {"proto", int(x.flow.proto)},
                          {"peer", util::format_addr(x.flow.peer)}, {"sock", x.flow.sock}, {"conn", x.flow.conn}});
    });
    s["bindings"] = b;
    out = s.encode();
    return JN_OK;
  }

  jn_status restore_state(uint32_t schema, std::string_view data) override {
    util::StateIn in;
    std::string err;
    jn_status st = in.parse(schema, 1, 1, data, err);
    if (st != JN_OK) {
      host().set_error(err);
      return st;
    }
    if (in.has("env")) env_.restore(in["env"]);
    if (in.has("stack") && !stack_->restore(in["stack"].get<std::string>(), err)) {
      host().set_error(err);
      return JN_ERR_INVALID;
    }
    if (in.has("dialogs") && !dialogs_.from_json(in["dialogs"])) {
      host().set_error("dialogs: bad state");
      return JN_ERR_INVALID;
    }
    for (auto& e : in["calls"]) {
      Call c;
      c.n = e.at("n").get<uint64_t>();
      c.uac = e.at("uac").get<bool>();
      c.state = e.at("state").get<std::string>();
      util::hex_decode(e.at("dialog").get<std::string>(), c.dialog);
      c.invite = e.at("invite").get<uint64_t>();
      util::hex_decode(e.at("bytes").get<std::string>(), c.invite_bytes);
      c.flow.proto = e.at("proto").get<int>() == 2 ? sip::Proto::Tcp : sip::Proto::Udp;
      util::parse_addr(e.at("peer").get<std::string>(), c.flow.peer);
      c.flow.conn = e.at("conn").get<jn_handle>();
      c.invite_cseq = e.at("cseq").get<uint32_t>();
      c.auth_tried = e.at("auth").get<bool>();
      if (c.invite) by_txn_[c.invite] = c.n;
      calls_[c.n] = std::move(c);
    }
    next_call_ = in.get("next_call", next_call_);
    if (in["bindings"].is_object())
      for (auto& [aor, list] : in["bindings"].items())
        for (auto& x : list) {
          Binding b;
          b.contact = x.at("contact").get<std::string>();
          b.expires_at = x.at("at").get<uint64_t>();
          b.flow.proto = x.at("proto").get<int>() == 2 ? sip::Proto::Tcp : sip::Proto::Udp;
          util::parse_addr(x.at("peer").get<std::string>(), b.flow.peer);
          b.flow.sock = x.at("sock").get<jn_handle>();
          b.flow.conn = x.at("conn").get<jn_handle>();
          size_t at = aor.rfind('@');
          auto u = at == std::string::npos ? users_.end() : users_.find(std::string_view(aor).substr(0, at));
          list_for(u == users_.end() ? nullptr : &u->second, aor).push_back(std::move(b));
        }
    host().info("sip-registrar: restored " + std::to_string(stack_->transactions().size()) + " transaction(s), " +
                std::to_string(dialogs_.size()) + " dialog(s), " + std::to_string(calls_.size()) + " call(s)");
    return JN_OK;
  }

 private:
  uint64_t now_s() { return host().now_ms() / 1000; }
  void reply(const jn_admin_request& req, int status, const json& body) { host().admin_reply(req.reply, status, body.dump()); }

  // --- registrar ---------------------------------------------------------------------------------
  // A To tag for a REGISTER's response: the stateless path derives its own (the same for a
  // retransmission), so drawing a random one would be wasted.
  std::string tag(sip::TxnId id) { return sip::Stack::is_stateless(id) ? std::string() : stack_->new_tag(); }

  void on_register(sip::TxnId id, const sip::Message& m, const sip::Flow& from) {
    ++registers_;
    const sip::Header* ah = m.find(sip::HeaderId::Authorization);
    std::string challenge;
    if (!ah) {
      auth_->challenge(challenge, now_s());
      stack_->respond(id, 401, {}, tag(id), "WWW-Authenticate: " + challenge + "\r\n");
      return;
    }
    std::string_view user;
    Account* account = nullptr;
    sip::Verdict v = auth_->verify(ah->value, "REGISTER", now_s(), [&](std::string_view u, sip::DigestSecret& out) {
      auto it = users_.find(u);
      if (it == users_.end()) return false;
      account = &it->second;
      out.ha1 = it->second.ha1;
      return true;
    }, &user, sip::Stack::is_stateless(id) ? sip::request_fingerprint(m) : 0);
    if (v != sip::Verdict::Ok) {
      int code = sip::status_for(v);
      if (log_each_ || code == 403)
        host().info("sip-registrar: REGISTER user=" + std::string(user) + " from " + util::format_addr(from.peer) + " refused " +
                    std::to_string(code) + " (" + sip::to_string(v) + ")");
      if (code == 401) {
        auth_->challenge(challenge, now_s(), v == sip::Verdict::Stale);
        stack_->respond(id, 401, {}, tag(id), "WWW-Authenticate: " + challenge + "\r\n");
      } else {
        stack_->respond(id, code, sip::to_string(v), tag(id));
      }
      return;
    }
    // The AOR is the To URI (its user must be the authenticated one: no registering for others).
    sip::Uri to;
    if (!sip::parse_uri(m.to().uri_text, to) || to.user != user) {
      host().info("sip-registrar: REGISTER user=" + std::string(user) + " for another AOR refused 403");
      stack_->respond(id, 403, "Forbidden (AOR is not the user)", tag(id));
      return;
    }
    uint64_t now = host().now_ms();
    std::vector<Binding>& list = aor_is(account->aor, to.user, to.host)
                                     ? account->bindings
                                     : list_for(account, std::string(to.user) + "@" + std::string(to.host));
    std::erase_if(list, [&](const Binding& b) { return b.expires_at <= now; });
    uint64_t dflt = 3600;
    if (const sip::Header* eh = m.find(sip::HeaderId::Expires)) sip::parse_uint(sip::trim_lws(eh->value), 0xffffffffu, dflt);
    for (const sip::Header* h = m.find(sip::HeaderId::Contact); h; h = m.next(h)) {
      std::string_view rest = h->value, val;
      while (sip::next_value(rest, val)) {
        sip::Contact c;
        if (!sip::parse_contact(val, c)) {
          stack_->respond(id, 400, "Bad Contact", tag(id));
          return;
        }
        if (c.star) {
          if (dflt != 0) {
            stack_->respond(id, 400, "Contact * needs Expires: 0", tag(id));
            return;
          }
          list.clear();
          continue;
        }
        uint64_t e = c.expires >= 0 ? uint64_t(c.expires) : dflt;
        if (e != 0 && e < min_expires_) {
          stack_->respond(id, 423, {}, tag(id), "Min-Expires: " + std::to_string(min_expires_) + "\r\n");
          return;
        }
        e = std::min<uint64_t>(e, max_expires_);
        // a refresh updates its binding in place and makes it the newest (the last)
        auto same = std::find_if(list.begin(), list.end(), [&](const Binding& b) { return b.contact == c.addr.uri_text; });
        if (same != list.end()) {
          if (!e) {
            list.erase(same);
            continue;
          }
          std::rotate(same, same + 1, list.end());
          list.back().expires_at = now + e * 1000;
          list.back().flow = from;
        } else if (e) {
          list.push_back({std::string(c.addr.uri_text), now + e * 1000, from});
        }
      }
    }
    std::string extra;
    for (auto& b : list)
      extra.append("Contact: <").append(b.contact).append(">;expires=").append(std::to_string((b.expires_at - now + 999) / 1000)).append("\r\n");
    ++register_ok_;
    if (log_each_)
      host().info("sip-registrar: REGISTER user=" + std::string(user) + " from " + util::format_addr(from.peer) + " over " +
                  std::string(sip::proto_name(from.proto)) + " -> 200 (" + std::to_string(list.size()) + " binding(s))");
    stack_->respond(id, 200, {}, tag(id), extra);
    if (list.empty() && &list != &account->bindings) std::erase_if(other_bindings_, [](const auto& kv) { return kv.second.empty(); });
  }

  // --- UAS ---------------------------------------------------------------------------------------
  void on_invite(sip::TxnId id, const sip::Message& m, const sip::Flow& from) {
    std::string tag = stack_->new_tag();
    sip::Dialog d;
    std::string err;
    if (!sip::Dialog::from_request(m, from, tag, stack_->contact(from.proto), d, &err)) {
      stack_->respond(id, 400, "Bad Request (" + err + ")", tag);
      return;
    }
    Call c;
    c.n = next_call_++;
    c.uac = false;
    c.state = "answered";
    c.invite = id;
    c.flow = from;
    c.dialog = d.key();
    d.confirm();
    dialogs_.add(std::move(d));
    by_txn_[id] = c.n;
    host().info("sip-registrar: call " + std::to_string(c.n) + " INVITE from " + util::format_addr(from.peer) + " over " +
                std::string(sip::proto_name(from.proto)));
    std::string contact = "Contact: " + stack_->contact(from.proto) + "\r\n";
    stack_->respond(id, 180, {}, tag, contact);
    stack_->respond(id, 200, {}, tag, contact, kSdp, "application/sdp");
    calls_[c.n] = std::move(c);
  }

  void on_ack(const sip::Message& m, const sip::Flow& from) {
    sip::Dialog* d = dialogs_.find(m);
    if (!d) return;  // the ACK of a non-2xx (handled in the transaction) or a stray
    d->on_request(m, from);
    for (auto& [n, c] : calls_)
      if (c.dialog == d->key() && !c.uac) {
        host().info("sip-registrar: call " + std::to_string(n) + " ACK received");
        if (c.invite) by_txn_.erase(c.invite);
        c.invite = 0;
      }
  }

  void in_dialog(sip::TxnId id, const sip::Message& m, const sip::Flow& from) {
    sip::Dialog* d = dialogs_.find(m);
    if (!d) {
      stack_->respond(id, 481, {}, {});
      return;
    }
    if (!d->on_request(m, from)) {
      stack_->respond(id, 500, "CSeq out of order", {});
      return;
    }
    Call* call = nullptr;
    for (auto& [n, c] : calls_)
      if (c.dialog == d->key()) call = &c;
    std::string_view method = m.method();
    if (method == "BYE") {
      stack_->respond(id, 200, {}, {});
      if (call) {
        host().info("sip-registrar: call " + std::to_string(call->n) + " ended by the peer (BYE)");
        end_call(*call, "ended");
      } else {
        dialogs_.erase(*d);
      }
      return;
    }
    if (method == "INVITE") {  // a re-INVITE: same answer
      stack_->respond(id, 200, {}, {}, "Contact: " + d->local_contact + "\r\n", kSdp, "application/sdp");
      return;
    }
    if (method == "INFO" || method == "MESSAGE" || method == "NOTIFY" || method == "OPTIONS" || method == "UPDATE") {
      stack_->respond(id, 200, {}, {});
      return;
    }
    stack_->respond(id, 405, {}, {});
  }

  // --- UAC ---------------------------------------------------------------------------------------
  void admin_call(const jn_admin_request& req, const json& body) {
    std::string to = body.at("to").get<std::string>();
    std::string transport = body.value("transport", std::string("udp"));
    sip::Uri u;
    if (!sip::parse_uri(to, u) || u.scheme != sip::Scheme::Sip) return reply(req, 400, {{"error", "to: not a sip: URI"}});
    jn_addr a{};
    bool literal = util::parse_ip(u.host, a);
    a.port = u.has_port ? u.port : 5060;
    Call c;
    c.n = next_call_++;
    c.uac = true;
    c.state = "calling";
    c.flow.proto = transport == "tcp" ? sip::Proto::Tcp : sip::Proto::Udp;
    c.flow.peer = a;
    c.invite_cseq = 1;
    std::string from_tag = stack_->new_tag(), call_id = stack_->new_call_id();
    sip::Writer w(c.invite_bytes);
    w.request_line("INVITE", to);
    stack_->write_via(w, c.flow.proto, stack_->new_branch());
    w.header("Max-Forwards", 70);
    w.header("From", "<" + stack_->local_uri(sip::Proto::Udp, "registrar") + ">;tag=" + from_tag);
    w.header("To", "<" + to + ">");
    w.header("Call-ID", call_id);
    w.header("CSeq", "1 INVITE");
    w.header("Contact", stack_->contact(c.flow.proto, "registrar"));
    w.finish(kSdp, "application/sdp");
    uint64_t n = c.n;
    if (!literal) {  // a name: RFC 3263 through the core (JN_DNS_SIP); the INVITE leaves in on_resolved
      c.state = "resolving";
      sip::Proto proto = c.flow.proto;
      calls_[n] = std::move(c);
      if (stack_->resolve(u.host, u.has_port ? u.port : 0, proto, n) != JN_OK) {
        calls_[n].state = "failed";
        return reply(req, 502, {{"error", "cannot resolve " + std::string(u.host)}});
      }
      return reply(req, 200, {{"call", n}});
    }
    if (!send_invite(c)) return reply(req, 502, {{"error", "the INVITE could not be sent"}});
    calls_[n] = std::move(c);
    reply(req, 200, {{"call", n}});
  }

  bool send_invite(Call& c) {
    c.invite = stack_->send_request(c.invite_bytes, c.flow);
    if (!c.invite) return false;
    by_txn_[c.invite] = c.n;
    host().info("sip-registrar: call " + std::to_string(c.n) + " INVITE sent to " + util::format_addr(c.flow.peer) + " over " +
                std::string(sip::proto_name(c.flow.proto)));
    return true;
  }

  void on_resolved(uint64_t cookie, const std::vector<sip::Flow>& targets, std::string_view error) override {
    auto it = calls_.find(cookie);
    if (it == calls_.end() || it->second.state != "resolving") return;
    Call& c = it->second;
    // The first target of our transport, IPv4 first (the test peers bind 127.0.0.1).
    const sip::Flow* pick = nullptr;
    for (int v4 = 1; v4 >= 0 && !pick; --v4)
      for (auto& t : targets)
        if (t.proto == c.flow.proto && (t.peer.family == 4) == (v4 == 1)) {
          pick = &t;
          break;
        }
    if (!pick) {
      host().info("sip-registrar: call " + std::to_string(c.n) + " failed: no target (" + std::string(error) + ")");
      c.state = "failed";
      return;
    }
    host().info("sip-registrar: call " + std::to_string(c.n) + " resolved to " + util::format_addr(pick->peer) + " (" +
                std::to_string(targets.size()) + " target(s))");
    c.flow.peer = pick->peer;
    c.state = "calling";
    if (!send_invite(c)) c.state = "failed";
  }

  void retry_with_auth(Call& call, const sip::Message& m, int status) {
    const sip::Header* ch = m.find(status == 401 ? sip::HeaderId::WWWAuthenticate : sip::HeaderId::ProxyAuthenticate);
    sip::DigestClient dc;
    std::string authz;
    sip::Message req;
    if (!ch || !dc.set_challenge(ch->value) || sip::parse(call.invite_bytes, req) != sip::ParseStatus::Ok ||
        !dc.authorize("INVITE", req.request_uri(), uac_user_, uac_password_, authz)) {
      host().info("sip-registrar: call " + std::to_string(call.n) + " failed " + std::to_string(status) + " (cannot answer the challenge)");
      end_call(call, "failed");
      return;
    }
    // Same Call-ID and From tag, CSeq + 1, a new branch, the credentials (RFC 3261 §22.2).
    std::string out;
    sip::Writer w(out);
    w.request_line("INVITE", req.request_uri());
    stack_->write_via(w, call.flow.proto, stack_->new_branch());
    for (const auto& h : req.headers()) {
      if (h.id == sip::HeaderId::Via || h.id == sip::HeaderId::CSeq || h.id == sip::HeaderId::ContentLength ||
          h.id == sip::HeaderId::ContentType)
        continue;
      w.header(h.name, h.value);
    }
    call.invite_cseq = req.cseq().seq + 1;
    w.header("CSeq", std::to_string(call.invite_cseq) + " INVITE");
    w.header(status == 401 ? "Authorization" : "Proxy-Authorization", authz);
    w.finish(req.body(), req.content_type());
    by_txn_.erase(call.invite);
    call.invite_bytes = out;
    call.auth_tried = true;
    call.invite = stack_->send_request(out, call.flow);
    if (call.invite) by_txn_[call.invite] = call.n;
    host().info("sip-registrar: call " + std::to_string(call.n) + " INVITE re-sent with credentials");
  }

  void send_bye(Call& call) {
    sip::Dialog* d = nullptr;
    dialogs_.for_each([&](sip::Dialog& x) {
      if (x.key() == call.dialog) d = &x;
    });
    if (!d) return end_call(call, "ended");
    std::string bye = d->request(*stack_, "BYE");
    sip::TxnId t = stack_->send_request(bye, d->flow);
    if (t) by_txn_[t] = call.n;
    call.state = "ending";
    host().info("sip-registrar: call " + std::to_string(call.n) + " BYE sent");
  }

  void admin_message(const jn_admin_request& req, const json& body) {
    std::string aor = body.at("aor").get<std::string>();
    std::string text = body.value("text", std::string("hello"));
    std::vector<Binding>* list = list_of(aor);
    uint64_t now = host().now_ms();
    if (!list || list->empty() || list->back().expires_at <= now) return reply(req, 404, {{"error", "no binding for " + aor}});
    Binding& b = list->back();
    std::string out;
    sip::Writer w(out);
    w.request_line("MESSAGE", b.contact);
    stack_->write_via(w, b.flow.proto, stack_->new_branch());
    w.header("Max-Forwards", 70);
    w.header("From", "<" + stack_->local_uri(sip::Proto::Udp, "registrar") + ">;tag=" + stack_->new_tag());
    w.header("To", "<sip:" + aor + ">");
    w.header("Call-ID", stack_->new_call_id());
    w.header("CSeq", "1 MESSAGE");
    w.finish(text, "text/plain");
    // Over the binding's flow: the connection the REGISTER came on, or its real UDP source.
    sip::TxnId t = stack_->send_request(out, b.flow);
    if (!t) return reply(req, 502, {{"error", "the MESSAGE could not be sent"}});
    reply(req, 200, {{"sent", "MESSAGE"}, {"transport", std::string(sip::proto_name(b.flow.proto))}, {"conn", b.flow.conn}});
  }

  void end_call(Call& call, const std::string& state) {
    call.state = state;
    dialogs_.for_each([&](sip::Dialog& d) {
      if (d.key() == call.dialog) d.state = sip::DialogState::Terminated;
    });
    std::string key = call.dialog;
    // erase by key: find the dialog again (for_each forbids erasing inside)
    sip::Dialog* found = nullptr;
    dialogs_.for_each([&](sip::Dialog& d) {
      if (d.key() == key) found = &d;
    });
    if (found) dialogs_.erase(*found);
  }

  sip::HostEnv env_;
  std::unique_ptr<sip::Stack> stack_;
  std::unique_ptr<sip::DigestServer> auth_;
  std::string udp_listen_, tcp_listen_;
  struct SvHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, Account, SvHash, std::equal_to<>> users_;
  std::unordered_map<std::string, std::vector<Binding>> other_bindings_;  // AORs beyond a user's first

  static bool aor_is(const std::string& aor, std::string_view user, std::string_view host) {
    return aor.size() == user.size() + 1 + host.size() && aor.compare(0, user.size(), user) == 0 && aor[user.size()] == '@' &&
           aor.compare(user.size() + 1, host.size(), host) == 0;
  }
  // The bindings of aor, made when missing: the account's own list when aor is its AOR (or it
  // has none yet), else other_bindings_.
  std::vector<Binding>& list_for(Account* a, const std::string& aor) {
    if (a && a->aor == aor) return a->bindings;
    auto o = other_bindings_.find(aor);
    if (o != other_bindings_.end()) return o->second;
    if (a && a->bindings.empty()) {  // free: the account takes this AOR
      a->aor = aor;
      return a->bindings;
    }
    return other_bindings_[aor];
  }
  std::vector<Binding>* list_of(const std::string& aor) {
    size_t at = aor.rfind('@');
    if (at != std::string::npos) {
      auto u = users_.find(std::string_view(aor).substr(0, at));
      if (u != users_.end() && u->second.aor == aor) return &u->second.bindings;
    }
    auto o = other_bindings_.find(aor);
    return o == other_bindings_.end() ? nullptr : &o->second;
  }
  template <class F>
  void for_each_list(F&& f) {
    for (auto& [name, a] : users_)
      if (!a.aor.empty() && !a.bindings.empty()) f(a.aor, a.bindings);
    for (auto& [aor, list] : other_bindings_) f(aor, list);
  }
  sip::DialogSet dialogs_;
  std::map<uint64_t, Call> calls_;
  std::unordered_map<sip::TxnId, uint64_t> by_txn_;
  uint64_t next_call_ = 1;
  uint32_t min_expires_ = 60, max_expires_ = 3600;
  std::string uac_user_, uac_password_;
  bool log_each_ = true;
  uint64_t registers_ = 0, register_ok_ = 0;
};

}  // namespace

JUNCTION_PLUGIN(SipRegistrar, "sip-registrar", "0.1", "test plugin: SIP digest registrar, UAS and UAC on sdk/sip", "", 1, 1)
