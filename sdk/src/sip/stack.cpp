// The SIP stack: see stack.hpp.
#include <junction/sip/stack.hpp>

#include <junction/util/addr.hpp>

#include "hash.hpp"

#include <algorithm>
#include <charconv>

namespace junction::sip {

// Computed once per parsed message (Message::fingerprint keeps it): the user's retransmission
// check and the stateless To tag below share one hash.
uint64_t request_fingerprint(const Message& m) { return m.fingerprint(); }

Stack::Stack(Env& env, StackUser& user, StackConfig cfg)
    : env_(env), user_(user), cfg_(std::move(cfg)), layer_(mux_, *this, cfg_.timers) {
  std::string k = env_.random_hex(8);
  std::from_chars(k.data(), k.data() + k.size(), tag_key_, 16);
}

void Stack::on_datagram(std::string_view bytes, const Flow& from) { input(bytes, from, Framing::Datagram); }

void Stack::on_stream_message(std::string_view bytes, const Flow& from) {
  if (bytes.find_first_not_of("\r\n") == std::string_view::npos) {  // CRLFCRLF ping: pong
    ++counters_.rx_keepalives;
    if (bytes.size() >= 4) {
      Flow f = from;
      env_.send(f, "\r\n");
    }
    return;
  }
  input(bytes, from, Framing::Stream);
}

void Stack::input(std::string_view bytes, const Flow& from, Framing framing) {
  if (framing == Framing::Datagram && bytes.find_first_not_of("\r\n") == std::string_view::npos) {
    ++counters_.rx_keepalives;  // a UDP keepalive (RFC 5626 uses STUN there; some devices send CRLF)
    return;
  }
  ParseStatus st = parse(bytes, msg_, framing, cfg_.limits);
  if (st != ParseStatus::Ok) {
    std::string why = to_string(st);
    if (!msg_.error_header().empty()) why += " (" + std::string(msg_.error_header().substr(0, 40)) + ")";
    bad(bytes, from, why, st == ParseStatus::BadVersion ? 505 : 400);
    return;
  }
  if (msg_.is_request() && stateless(msg_)) {
    // §8.2.7: no transaction; a retransmission is answered by running the user's logic again.
    ++counters_.rx_requests;
    ++counters_.rx_stateless;
    stateless_id_ = kStatelessBit | ++stateless_seq_;
    stateless_answered_ = false;
    stateless_from_ = &from;
    user_.on_request(stateless_id_, msg_, from);
    stateless_id_ = 0;
    stateless_from_ = nullptr;
    return;
  }
  TxnMsg m;
  txn_fields(msg_, m);
  if (m.is_request) {
    ++counters_.rx_requests;
  } else {
    ++counters_.rx_responses;
  }
  layer_.receive(m, msg_.bytes(), from);
}

// Whether a parsed request is answered without a server transaction (StackConfig).
bool Stack::stateless(const Message& m) const {
  std::string_view method = m.method();
  if (method == "REGISTER" && cfg_.stateless_register) return true;
  if (method == "INVITE" || method == "ACK" || method == "CANCEL") return false;  // these need their transactions
  return cfg_.stateless_request && cfg_.stateless_request(m);
}

// The transaction layer's fields, read from what parse() already found (no second pass).
void Stack::txn_fields(const Message& msg, TxnMsg& m) {
  m.is_request = msg.is_request();
  m.method = m.is_request ? msg.method() : msg.cseq().method;
  m.uri = msg.request_uri();
  m.status = msg.status();
  m.reason = msg.reason();
  const Via& v = msg.top_via();
  m.branch = v.branch;
  m.via_transport = v.transport;
  m.rport = v.has_rport;
  m.sent_by = v.sent_by;  // host[:port] as written, the same text scan() reads
  std::string_view all = msg.bytes();
  m.cseq = msg.cseq().seq;
  m.cseq_method = msg.cseq().method;
  m.call_id = msg.call_id();
  m.from_tag = msg.from_tag();
  m.to_tag = msg.to_tag();
  if (const Header* to = msg.find(HeaderId::To)) m.to = to->value;
  m.body_offset = static_cast<size_t>(msg.body().data() - all.data());
  if (msg.body().empty()) m.body_offset = all.size();
}

void Stack::bad(std::string_view bytes, const Flow& from, const std::string& why, int code) {
  ++counters_.rx_bad;
  log(JN_LOG_WARN, "sip: bad message from " + util::format_addr(from.peer) + " over " + std::string(proto_name(from.proto)) +
                       ": " + why);
  // Answer a request we can still address (its Via, From, To, Call-ID and CSeq read); never an ACK.
  TxnMsg m;
  if (!scan(bytes, m) || !m.is_request || m.method == "ACK") return;
  std::string reason = code == 505 ? "Version Not Supported" : "Bad Request";
  std::string resp = TransactionLayer::build_response(bytes.substr(0, m.body_offset), code, reason, new_tag(),
                                                      "Warning: 399 junction \"" + why + "\"\r\n", {}, {});
  send_stateless(resp, from);
}

void Stack::on_request(TxnId id, const TxnMsg&, std::string_view, const Flow& from) {
  TxnId outer = delivering_;
  delivering_ = id;
  user_.on_request(id, msg_, from);
  delivering_ = outer;
}

void Stack::on_response(TxnId id, const TxnMsg& m, std::string_view bytes) {
  if (bytes.empty()) {
    user_.on_response(id, m.status, nullptr);
    return;
  }
  user_.on_response(id, m.status, &msg_);
}

void Stack::on_stray_response(const TxnMsg& m, std::string_view, const Flow& from) {
  log(JN_LOG_DEBUG, "sip: response " + std::to_string(m.status) + " from " + util::format_addr(from.peer) +
                        " matches no transaction (dropped)");
}

void Stack::on_connection_closed(jn_handle conn) {
  layer_.on_connection_closed(conn);  // its client transactions end first (503)
  user_.on_connection_closed(conn);
}

void Stack::on_timer() {
  armed_ = UINT64_MAX;
  uint64_t now = env_.now_ms();
  if (layer_wake_ <= now) {
    layer_wake_ = UINT64_MAX;  // the layer re-arms through the mux
    layer_.on_timer();
  }
  if (user_wake_ <= now) {
    user_wake_ = UINT64_MAX;
    user_.on_wake();
  }
  rearm();
}

void Stack::wake_user_at(uint64_t at_ms) {
  user_wake_ = at_ms;
  rearm();
}

void Stack::rearm() {
  uint64_t want = std::min(layer_wake_, user_wake_);
  if (want != armed_) {
    armed_ = want;
    env_.wake_at(want);
  }
}

jn_status Stack::respond(TxnId id, int code, std::string_view reason, std::string_view to_tag, std::string_view extra_headers,
                         std::string_view body, std::string_view content_type) {
  if (reason.empty()) reason = reason_phrase(code);
  if (is_stateless(id)) return respond_stateless(id, code, reason, extra_headers, body, content_type);
  if (id && id == delivering_)  // the request is still parsed in msg_: no second scan of its bytes
    return layer_.respond(id, msg_, code, reason, to_tag, cfg_.user_agent, extra_headers, body, content_type);
  if (!cfg_.user_agent.empty()) {
    std::string extra = "Server: " + cfg_.user_agent + "\r\n";
    extra.append(extra_headers);
    return layer_.respond(id, code, reason, to_tag, extra, body, content_type);
  }
  return layer_.respond(id, code, reason, to_tag, extra_headers, body, content_type);
}

jn_status Stack::respond_stateless(TxnId id, int code, std::string_view reason, std::string_view extra_headers,
                                   std::string_view body, std::string_view content_type) {
  if (id != stateless_id_ || !stateless_from_) return JN_ERR_NOT_FOUND;  // answered during on_request only
  if (code < 200 || code > 699) return JN_ERR_INVALID;  // §8.2.7: no provisional responses
  if (stateless_answered_) return JN_ERR_STATE;
  stateless_answered_ = true;
  // The same request (a retransmission) gets the same tag; the key keeps tags unpredictable.
  char tag[16];
  uint64_t t = detail::mix64(msg_.fingerprint() ^ tag_key_);
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 16; ++i) tag[i] = kHex[(t >> (60 - 4 * i)) & 15];
  // Built into buffers the stack keeps: no allocation per answer once they have grown.
  uint16_t rport = 0;
  TransactionLayer::source_of(msg_.top_via().sent_by, msg_.top_via().has_rport, *stateless_from_, received_, rport);
  TransactionLayer::build_response(tx_buf_, msg_, code, reason, std::string_view(tag, 16), cfg_.user_agent, extra_headers,
                                   body, content_type, received_, rport);
  ++counters_.tx_stateless;
  Flow f = *stateless_from_;
  jn_status st = env_.send(f, tx_buf_);
  if (st != JN_OK) {
    log(JN_LOG_WARN, "sip: stateless " + std::to_string(code) + " to " + util::format_addr(f.peer) + " failed (status " +
                         std::to_string(st) + ")");
    return JN_ERR_IO;
  }
  return JN_OK;
}

jn_status Stack::resolve(std::string_view host, uint16_t port, Proto proto, uint64_t cookie) {
  jn_addr a{};
  if (util::parse_ip(host, a)) {  // a literal: no query
    a.port = port ? port : default_port(proto);
    Flow f;
    f.proto = proto;
    f.peer = a;
    user_.on_resolved(cookie, {f}, {});
    return JN_OK;
  }
  return env_.resolve(host, port, proto_to_jn(proto), cookie);
}

std::string Stack::new_branch() { return "z9hG4bK" + env_.random_hex(10); }
std::string Stack::new_tag() { return env_.random_hex(8); }
std::string Stack::new_call_id() { return env_.random_hex(16) + "@" + cfg_.host; }

void Stack::write_via(Writer& w, Proto proto, std::string_view branch) const {
  w.via(proto_name(proto), cfg_.host, port_of(proto), branch, true);
}

uint16_t Stack::port_of(Proto proto) const {
  return proto == Proto::Tls ? cfg_.tls_port : proto == Proto::Tcp ? cfg_.tcp_port : cfg_.udp_port;
}

std::string Stack::local_uri(Proto proto, std::string_view user) const {
  std::string u = "sip:";
  if (!user.empty()) u.append(user).append("@");
  bool v6 = cfg_.host.find(':') != std::string::npos;
  if (v6) u += "[";
  u += cfg_.host;
  if (v6) u += "]";
  u += ":" + std::to_string(port_of(proto));
  if (proto != Proto::Udp) u.append(";transport=").append(proto_param(proto));
  return u;
}

std::string Stack::contact(Proto proto, std::string_view user) const { return "<" + local_uri(proto, user) + ">"; }

}  // namespace junction::sip
