// RFC 3261 §17 transactions; see transaction.hpp.
#include <junction/sip/transaction.hpp>

#include <junction/sip/message.hpp>

#include <junction/util/addr.hpp>
#include <junction/util/encoding.hpp>

#include "raw.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace junction::sip {

namespace {
constexpr std::string_view kCookie = "z9hG4bK";

bool parse_u32(std::string_view s, uint32_t& out) {
  s = raw::trim(s);
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// The first value of a comma list (a Via header may carry several).
std::string_view first_value(std::string_view v) {
  bool quoted = false;
  int angle = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if (quoted) {
      if (c == '\\') ++i;
      else if (c == '"') quoted = false;
    } else if (c == '"') quoted = true;
    else if (c == '<') ++angle;
    else if (c == '>') --angle;
    else if (c == ',' && angle <= 0) return raw::trim(v.substr(0, i));
  }
  return raw::trim(v);
}
}  // namespace

std::string_view state_name(TxnState s) {
  switch (s) {
    case TxnState::Calling: return "Calling";
    case TxnState::Trying: return "Trying";
    case TxnState::Proceeding: return "Proceeding";
    case TxnState::Completed: return "Completed";
    case TxnState::Confirmed: return "Confirmed";
    case TxnState::Accepted: return "Accepted";
    case TxnState::Terminated: return "Terminated";
  }
  return "?";
}

bool scan(std::string_view bytes, TxnMsg& m, std::string* error) {
  auto fail = [&](const char* why) {
    if (error) *error = why;
    return false;
  };
  m = TxnMsg{};
  size_t eol = bytes.find("\r\n");
  if (eol == std::string_view::npos) eol = bytes.find('\n');
  if (eol == std::string_view::npos) return fail("no start line");
  std::string_view line = bytes.substr(0, eol);
  if (line.substr(0, 8) == "SIP/2.0 ") {
    std::string_view rest = line.substr(8);
    uint32_t code = 0;
    if (rest.size() < 3 || !parse_u32(rest.substr(0, 3), code) || code < 100 || code > 699) return fail("bad status code");
    if (rest.size() > 3 && rest[3] != ' ') return fail("bad status line");
    m.status = static_cast<int>(code);
    m.reason = rest.size() > 4 ? rest.substr(4) : std::string_view();
  } else {
    size_t sp1 = line.find(' ');
    size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp1 == 0 || sp2 == std::string_view::npos || line.substr(sp2 + 1, 4) != "SIP/") return fail("bad request line");
    m.sip20 = line.substr(sp2 + 1) == "SIP/2.0";  // another version is still addressable (505)
    m.is_request = true;
    m.method = line.substr(0, sp1);
    m.uri = line.substr(sp1 + 1, sp2 - sp1 - 1);
    if (m.uri.empty()) return fail("empty Request-URI");
    for (char c : m.method)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '!' || c == '%' || c == '*' ||
            c == '_' || c == '+' || c == '`' || c == '\'' || c == '~'))
        return fail("bad method");
  }
  bool via = false, cseq = false, call_id = false, from = false, to = false;
  size_t body = raw::for_each_header(bytes, [&](const raw::Line& l) {
    std::string_view n = raw::long_name(l.name);
    if (!via && raw::ieq(n, "Via")) {
      via = true;
      std::string_view v = first_value(l.value);
      size_t sp = v.find_first_of(" \t");
      if (sp == std::string_view::npos) return true;
      std::string_view proto = v.substr(0, sp);
      size_t slash = proto.rfind('/');
      m.via_transport = slash == std::string_view::npos ? proto : proto.substr(slash + 1);
      std::string_view rest = raw::trim(v.substr(sp));
      size_t semi = rest.find(';');
      m.sent_by = raw::trim(rest.substr(0, semi));
      m.branch = raw::param(v, "branch");
      raw::param(v, "rport", &m.rport);
    } else if (!cseq && raw::ieq(n, "CSeq")) {
      std::string_view v = l.value;
      size_t sp = v.find_first_of(" \t");
      if (sp == std::string_view::npos || !parse_u32(v.substr(0, sp), m.cseq)) return true;
      m.cseq_method = raw::trim(v.substr(sp));
      cseq = !m.cseq_method.empty();
    } else if (!call_id && raw::ieq(n, "Call-ID")) {
      m.call_id = l.value;
      call_id = !m.call_id.empty();
    } else if (!from && raw::ieq(n, "From")) {
      from = true;
      m.from_tag = raw::param(l.value, "tag");
    } else if (!to && raw::ieq(n, "To")) {
      to = true;
      m.to = l.value;
      m.to_tag = raw::param(l.value, "tag");
    }
    return true;
  });
  if (body == std::string_view::npos) return fail("header section does not end");
  if (!via || m.sent_by.empty()) return fail("no Via");
  if (!cseq) return fail("no or bad CSeq");
  if (!call_id) return fail("no Call-ID");
  if (!from || !to) return fail("no From or To");
  if (m.is_request && m.cseq_method != m.method) return fail("CSeq method differs from the request's");
  if (!m.is_request) m.method = m.cseq_method;
  m.body_offset = body;
  return true;
}

std::string TransactionLayer::client_key(std::string_view branch, std::string_view method) {
  std::string k = "c|";
  k.append(branch).append("|").append(method);
  return k;
}

std::string_view TransactionLayer::server_key(const TxnMsg& m) {
  std::string_view method = m.method == "ACK" ? std::string_view("INVITE") : m.method;
  std::string& k = key_buf_;
  k.clear();
  if (m.branch.substr(0, kCookie.size()) == kCookie) {
    k.append("s|").append(m.branch).append("|").append(m.sent_by).append("|").append(method);
  } else {  // RFC 2543 peer: no usable branch
    char seq[16];
    auto r = std::to_chars(seq, seq + sizeof seq, m.cseq);
    k.append("s2|").append(m.call_id).append("|").append(m.from_tag).append("|").append(seq, size_t(r.ptr - seq));
    k.append("|").append(m.sent_by).append("|").append(method);
  }
  return k;
}

// --- the table ------------------------------------------------------------------------------------

void detail::FlatIndex::insert(uint64_t k, uint32_t v) {
  if ((size_ + 1) * 10 > e_.size() * 7) {  // load above 0.7: double
    std::vector<Entry> old(e_.size() * 2);
    old.swap(e_);
    size_ = 0;
    for (const Entry& x : old)
      if (x.k) insert(x.k, x.v);
  }
  const size_t mask = e_.size() - 1;
  size_t i = home(k, mask);
  while (e_[i].k) i = (i + 1) & mask;
  e_[i] = {k, v};
  ++size_;
}

bool detail::FlatIndex::erase(uint64_t k, uint32_t v) {
  const size_t mask = e_.size() - 1;
  size_t i = home(k, mask);
  while (e_[i].k && !(e_[i].k == k && e_[i].v == v)) i = (i + 1) & mask;
  if (!e_[i].k) return false;
  // Backward shift: pull later entries of the probe run into the hole when their home allows.
  for (size_t j = (i + 1) & mask; e_[j].k; j = (j + 1) & mask) {
    size_t h = home(e_[j].k, mask);
    bool movable = i <= j ? (h <= i || h > j) : (h <= i && h > j);
    if (movable) {
      e_[i] = e_[j];
      i = j;
    }
  }
  e_[i] = Entry{};
  --size_;
  return true;
}

uint64_t TransactionLayer::hash_key(std::string_view key) { return std::hash<std::string_view>{}(key) | 1; }

TransactionLayer::Txn* TransactionLayer::find(TxnId id) {
  if (!id) return nullptr;
  uint32_t slot = ids_.find(id_key(id), [&](uint32_t v) { return slab_[v].id == id; });
  return slot == UINT32_MAX ? nullptr : &slab_[slot];
}
const TransactionLayer::Txn* TransactionLayer::find(TxnId id) const {
  return const_cast<TransactionLayer*>(this)->find(id);
}

TransactionLayer::Txn& TransactionLayer::create(TxnId id) {
  uint32_t slot;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    slot = uint32_t(slab_.size());
    slab_.emplace_back();
  }
  Txn& t = slab_[slot];
  t.id = id;
  t.slot = slot;
  ids_.insert(id_key(id), slot);
  return t;
}

void TransactionLayer::index_key(Txn& t) {
  keys_.insert(hash_key(t.key), t.slot);
  t.keyed = true;
}

TxnId TransactionLayer::find_key(std::string_view key) const {
  uint32_t slot = keys_.find(hash_key(key), [&](uint32_t v) { return slab_[v].key == key; });
  return slot == UINT32_MAX ? 0 : slab_[slot].id;
}

void TransactionLayer::erase(Txn& t) {
  if (t.keyed) keys_.erase(hash_key(t.key), t.slot);
  ids_.erase(id_key(t.id), t.slot);
  uint32_t slot = t.slot;
  t = Txn{};  // releases its strings now, not when the slot is reused
  free_.push_back(slot);
}

std::string_view TransactionLayer::request_of(TxnId id) const {
  const Txn* t = find(id);
  return t ? std::string_view(t->request) : std::string_view();
}
const Flow* TransactionLayer::flow_of(TxnId id) const {
  const Txn* t = find(id);
  return t ? &t->flow : nullptr;
}
TxnState TransactionLayer::state_of(TxnId id) const {
  const Txn* t = find(id);
  return t ? t->state : TxnState::Terminated;
}

void TransactionLayer::file(Txn& t) {
  uint64_t next = 0;
  if (t.retx_at) next = t.retx_at;
  if (t.end_at && (!next || t.end_at < next)) next = t.end_at;
  if (next != t.filed) {
    t.filed = next;
    if (next) {
      uint64_t now = env_.now_ms();
      queues_[next > now ? next - now : 0].push_back({next, t.id});
    }
  }
  rearm();
}

bool TransactionLayer::stale(const Due& d) const {
  const Txn* t = find(d.id);
  return !t || t->filed != d.at;
}

std::deque<TransactionLayer::Due>* TransactionLayer::earliest() {
  std::deque<Due>* best = nullptr;
  for (auto& [delay, q] : queues_) {
    while (!q.empty() && stale(q.front())) q.pop_front();
    if (!q.empty() && (!best || q.front().at < best->front().at)) best = &q;
  }
  return best;
}

void TransactionLayer::rearm() {
  std::deque<Due>* q = earliest();
  uint64_t want = q ? q->front().at : UINT64_MAX;
  if (want != armed_) {
    armed_ = want;
    env_.wake_at(want);
  }
}

void TransactionLayer::terminate(Txn& t) {
  if (!t.ack_key.empty()) {
    auto a = by_ack_.find(t.ack_key);
    if (a != by_ack_.end() && a->second == t.id) by_ack_.erase(a);
  }
  erase(t);  // t is dead from here
  rearm();
}

bool TransactionLayer::transmit(Txn& t, std::string_view bytes) {
  jn_status st = env_.send(t.flow, bytes);
  if (st != JN_OK) {
    log(JN_LOG_WARN, "sip: send to " + util::format_addr(t.flow.peer) + " over " + std::string(proto_name(t.flow.proto)) +
                         " failed (status " + std::to_string(st) + ")");
    return false;
  }
  return true;
}

void TransactionLayer::report(Txn& t, int status, std::string_view reason) {
  TxnMsg m;
  m.status = status;
  m.reason = reason;
  TxnMsg req;
  scan(t.request, req);
  m.method = req.method;
  m.cseq_method = req.method;
  m.cseq = req.cseq;
  m.call_id = req.call_id;
  m.from_tag = req.from_tag;
  m.branch = req.branch;
  tu_.on_response(t.id, m, {});
}

TxnId TransactionLayer::send_request(std::string request, const Flow& to) {
  TxnMsg m;
  std::string why;
  if (!scan(request, m, &why) || !m.is_request) {
    log(JN_LOG_ERROR, "sip: refusing to send a malformed request: " + why);
    return 0;
  }
  if (m.method == "ACK") {
    log(JN_LOG_ERROR, "sip: an ACK has no client transaction (send it with send_stateless)");
    return 0;
  }
  if (m.branch.substr(0, kCookie.size()) != kCookie) {
    log(JN_LOG_ERROR, "sip: a request must carry a z9hG4bK branch in its top Via");
    return 0;
  }
  std::string key = client_key(m.branch, m.method);
  if (find_key(key)) {
    log(JN_LOG_ERROR, "sip: a client transaction with branch " + std::string(m.branch) + " already exists");
    return 0;
  }
  TxnId id = next_id_++;
  Txn& t = create(id);
  t.kind = m.method == "INVITE" ? TxnKind::InviteClient : TxnKind::NonInviteClient;
  t.state = t.kind == TxnKind::InviteClient ? TxnState::Calling : TxnState::Trying;
  t.key = key;
  t.flow = to;
  t.request = std::move(request);
  if (!transmit(t, t.request)) {
    erase(t);
    return 0;
  }
  index_key(t);
  uint64_t now = env_.now_ms();
  if (!t.flow.reliable()) {  // timers A / E
    t.interval = t_.t1_ms;
    t.retx_at = now + t.interval;
  }
  t.end_at = now + 64ull * t_.t1_ms;  // timers B / F
  file(t);
  return id;
}

jn_status TransactionLayer::send_stateless(std::string_view bytes, const Flow& to) {
  Flow f = to;
  return env_.send(f, bytes);
}

jn_status TransactionLayer::respond_with(TxnId id, int status, std::string response) {
  Txn* tp = find(id);
  if (!tp) return JN_ERR_NOT_FOUND;
  Txn& t = *tp;
  if (t.kind != TxnKind::InviteServer && t.kind != TxnKind::NonInviteServer) return JN_ERR_INVALID;
  if (t.status >= 200) return JN_ERR_STATE;
  if (status < 100 || status > 699) return JN_ERR_INVALID;
  uint64_t now = env_.now_ms();
  t.status = status;
  t.last = std::move(response);
  bool sent = transmit(t, t.last);
  if (t.kind == TxnKind::InviteServer) {
    if (status >= 200 && status < 300) {
      // The UAS core retransmits its 2xx until the ACK (§13.3.1.4), on any transport.
      TxnMsg req;
      scan(t.request, req);
      t.ack_key = std::string(req.call_id) + "|" + std::to_string(req.cseq);
      t.state = TxnState::Accepted;
      by_ack_[t.ack_key] = t.id;
      t.interval = t_.t1_ms;
      t.retx_at = now + t.interval;
      t.end_at = now + 64ull * t_.t1_ms;  // then no ACK: the TU is told (and timer L ends)
    } else if (status >= 300) {
      t.state = TxnState::Completed;
      if (!t.flow.reliable()) {  // timer G
        t.interval = t_.t1_ms;
        t.retx_at = now + t.interval;
      }
      t.end_at = now + 64ull * t_.t1_ms;  // timer H
    }
  } else {
    if (status < 200) {
      t.state = TxnState::Proceeding;
    } else {
      t.state = TxnState::Completed;
      t.end_at = now + (t.flow.reliable() ? 0 : 64ull * t_.t1_ms);  // timer J
    }
  }
  // After a final response the request is never needed again (retransmissions match by key and
  // get `last`): with timer J keeping UDP transactions 32 s, this halves what they hold.
  if (status >= 200) std::string().swap(t.request);
  file(t);
  return sent ? JN_OK : JN_ERR_IO;
}

jn_status TransactionLayer::respond(TxnId id, int status, std::string_view reason, std::string_view to_tag,
                                    std::string_view extra_headers, std::string_view body, std::string_view content_type) {
  const Txn* tp = find(id);
  if (!tp) return JN_ERR_NOT_FOUND;
  const Txn& t = *tp;
  std::string resp = build_response(t.request, status, reason, status > 100 ? to_tag : std::string_view(), extra_headers,
                                    body, content_type, t.received, t.rport);
  return respond_with(id, status, std::move(resp));
}

void TransactionLayer::source_of(std::string_view sent_by, bool rport, const Flow& from, std::string& received,
                                 uint16_t& rport_out) {
  // The real source in the top Via of our responses (§18.2.1 received, RFC 3581 rport), so the
  // peer's NAT mapping is visible to it and to proxies.
  received.clear();
  rport_out = 0;
  if (!from.peer.family) return;
  std::string ip;
  if (from.peer.family == 4) {  // by hand: inet_ntop goes through printf, once per request
    char buf[16];
    char* p = buf;
    for (int i = 0; i < 4; ++i) {
      if (i) *p++ = '.';
      p = std::to_chars(p, buf + sizeof buf, unsigned(from.peer.ip[i])).ptr;
    }
    ip.assign(buf, size_t(p - buf));
  } else {
    ip = util::format_ip(from.peer);
  }
  std::string_view host = sent_by;
  if (!host.empty() && host.front() == '[')
    host = host.substr(0, host.find(']') == std::string_view::npos ? host.size() : host.find(']') + 1);
  else
    host = host.substr(0, host.find(':'));
  bool differs = host != ip && !(host.size() == ip.size() + 2 && host.substr(1, ip.size()) == ip);
  if (rport) rport_out = from.peer.port;
  if (differs || rport) received = std::move(ip);  // with rport, received= is mandatory (RFC 3581 §4)
}

jn_status TransactionLayer::respond(TxnId id, const Message& request, int status, std::string_view reason,
                                    std::string_view to_tag, std::string_view server, std::string_view extra_headers,
                                    std::string_view body, std::string_view content_type) {
  const Txn* tp = find(id);
  if (!tp) return JN_ERR_NOT_FOUND;
  std::string resp = build_response(request, status, reason, status > 100 ? to_tag : std::string_view(), server,
                                    extra_headers, body, content_type, tp->received, tp->rport);
  return respond_with(id, status, std::move(resp));
}

void TransactionLayer::source_params(Txn& t, const TxnMsg& m, const Flow& from) {
  source_of(m.sent_by, m.rport, from, t.received, t.rport);
}

jn_status TransactionLayer::cancel(TxnId id) {
  Txn* tp = find(id);
  if (!tp) return JN_ERR_NOT_FOUND;
  Txn& t = *tp;
  if (t.kind != TxnKind::InviteClient) return JN_ERR_INVALID;
  if (t.state == TxnState::Calling) {  // §9.1: not before a provisional response
    t.cancel_wanted = true;
    return JN_OK;
  }
  if (t.state != TxnState::Proceeding) return JN_ERR_STATE;
  std::string c = build_cancel(t.request);
  Flow f = t.flow;
  t.cancel_wanted = false;
  t.end_at = env_.now_ms() + 64ull * t_.t1_ms;  // no final response after the CANCEL: 408
  file(t);
  return send_request(std::move(c), f) ? JN_OK : JN_ERR_IO;
}

void TransactionLayer::receive(const TxnMsg& m, std::string_view bytes, const Flow& from) {
  if (!m.is_request) {
    key_buf_.assign("c|").append(m.branch).append("|").append(m.cseq_method);  // client_key without an allocation
    Txn* t = find(find_key(key_buf_));
    if (!t) {
      tu_.on_stray_response(m, bytes, from);
      return;
    }
    client_response(*t, m, bytes);
    return;
  }
  if (m.method == "ACK") {
    if (Txn* tp = find(find_key(server_key(m)))) {
      Txn& t = *tp;
      if (t.state == TxnState::Completed) {  // the ACK of our non-2xx: stop timer G, start I
        t.state = TxnState::Confirmed;
        t.retx_at = 0;
        t.end_at = env_.now_ms() + (t.flow.reliable() ? 0 : t_.t4_ms);
        file(t);
        return;
      }
      if (t.state == TxnState::Confirmed) return;  // a retransmitted ACK
    }
    auto a = by_ack_.find(std::string(m.call_id) + "|" + std::to_string(m.cseq));
    if (a != by_ack_.end()) {  // the ACK of the 2xx we retransmit
      Txn& t = *find(a->second);  // by_ack_ holds live transactions only
      t.retx_at = 0;
      by_ack_.erase(a);
      t.ack_key.clear();
      file(t);  // stays in Accepted until timer L, absorbing INVITE retransmissions
    }
    tu_.on_request(0, m, bytes, from);
    return;
  }
  std::string_view key = server_key(m);
  if (Txn* t = find(find_key(key))) {
    server_request(*t, m, bytes, from);
    return;
  }
  if (m.method == "CANCEL") {
    handle_cancel(m, bytes, from);
    return;
  }
  TxnId id = next_id_++;
  Txn& t = create(id);
  t.kind = m.method == "INVITE" ? TxnKind::InviteServer : TxnKind::NonInviteServer;
  t.state = t.kind == TxnKind::InviteServer ? TxnState::Proceeding : TxnState::Trying;
  t.key.assign(key);
  t.request.assign(bytes);
  t.flow = from;
  source_params(t, m, from);
  index_key(t);
  if (t.kind == TxnKind::InviteServer) respond(id, 100, "Trying");  // §17.2.1: at once, stops the UAC's timer A
  tu_.on_request(id, m, bytes, from);
}

void TransactionLayer::server_request(Txn& t, const TxnMsg&, std::string_view, const Flow&) {
  // A retransmitted request: answered with the last response, never passed to the TU.
  switch (t.state) {
    case TxnState::Proceeding:
    case TxnState::Completed:
    case TxnState::Accepted:
      if (!t.last.empty()) transmit(t, t.last);
      break;
    default:
      break;  // Trying (nothing sent yet), Confirmed: absorbed
  }
}

void TransactionLayer::handle_cancel(const TxnMsg& m, std::string_view bytes, const Flow& from) {
  // The CANCEL gets its own non-INVITE server transaction (its retransmissions are absorbed).
  TxnId cid = next_id_++;
  {
    Txn& c = create(cid);
    c.kind = TxnKind::NonInviteServer;
    c.state = TxnState::Trying;
    c.key.assign(server_key(m));
    c.request.assign(bytes);
    c.flow = from;
    source_params(c, m, from);
    index_key(c);
  }
  TxnMsg inv = m;
  inv.method = "INVITE";
  Txn* tp = find(find_key(server_key(inv)));
  if (!tp) {
    respond(cid, 481, "Call/Transaction Does Not Exist");
    return;
  }
  Txn& t = *tp;
  respond(cid, 200, "OK");
  if (t.status >= 200) return;  // too late: the final response stands
  // The 487 carries the To tag of an earlier provisional, if one had one.
  std::string tag;
  if (!t.last.empty()) {
    TxnMsg last;
    if (scan(t.last, last)) tag = std::string(last.to_tag);
  }
  if (tag.empty()) tag = env_.random_hex(8);
  TxnId iid = t.id;
  respond(iid, 487, "Request Terminated", tag);
  tu_.on_cancelled(iid);
}

void TransactionLayer::client_response(Txn& t, const TxnMsg& m, std::string_view bytes) {
  uint64_t now = env_.now_ms();
  TxnId id = t.id;
  if (t.kind == TxnKind::InviteClient) {
    switch (t.state) {
      case TxnState::Calling:
      case TxnState::Proceeding:
        t.status = m.status;
        if (m.status < 200) {
          t.state = TxnState::Proceeding;
          t.retx_at = 0;
          t.end_at = now + t_.timer_c_ms;
          bool cancel_now = t.cancel_wanted;
          file(t);
          tu_.on_response(id, m, bytes);
          if (cancel_now) cancel(id);
        } else if (m.status < 300) {
          t.state = TxnState::Accepted;  // RFC 6026: timer M absorbs nothing; 2xx go to the TU
          t.retx_at = 0;
          t.end_at = now + 64ull * t_.t1_ms;
          file(t);
          tu_.on_response(id, m, bytes);
        } else {
          t.state = TxnState::Completed;
          t.retx_at = 0;
          t.last = build_ack(t.request, m);
          transmit(t, t.last);
          t.end_at = now + (t.flow.reliable() ? 0 : t_.timer_d_ms);
          file(t);
          tu_.on_response(id, m, bytes);
        }
        break;
      case TxnState::Accepted:
        if (m.status >= 200 && m.status < 300) tu_.on_response(id, m, bytes);  // re-ACKed by the TU
        break;
      case TxnState::Completed:
        if (m.status >= 300) transmit(t, t.last);  // the final response again: our ACK was lost
        break;
      default:
        break;
    }
    return;
  }
  // non-INVITE client
  if (t.state != TxnState::Trying && t.state != TxnState::Proceeding) return;  // absorbed
  t.status = m.status;
  if (m.status < 200) {
    t.state = TxnState::Proceeding;
    if (t.retx_at) t.interval = t_.t2_ms;  // timer E continues at T2
  } else {
    t.state = TxnState::Completed;
    t.retx_at = 0;
    t.end_at = now + (t.flow.reliable() ? 0 : t_.t4_ms);  // timer K
  }
  file(t);
  tu_.on_response(id, m, bytes);
}

void TransactionLayer::fire(Txn& t, uint64_t now) {
  if (t.end_at && t.end_at <= now) {
    TxnId id = t.id;
    switch (t.kind) {
      case TxnKind::InviteClient:
      case TxnKind::NonInviteClient:
        if (t.state == TxnState::Calling || t.state == TxnState::Trying || t.state == TxnState::Proceeding) {
          log(JN_LOG_INFO, "sip: client transaction timed out in " + std::string(state_name(t.state)) + " (408)");
          t.end_at = 0;
          t.state = TxnState::Terminated;
          report(t, 408, "Request Timeout");
        }
        break;
      case TxnKind::InviteServer:
        if (t.state == TxnState::Completed || (t.state == TxnState::Accepted && !t.ack_key.empty())) {
          log(JN_LOG_INFO, "sip: no ACK for the final response of an INVITE");
          t.state = TxnState::Terminated;
          tu_.on_ack_timeout(id);
        }
        break;
      default:
        break;
    }
    if (Txn* live = find(id)) terminate(*live);
    return;
  }
  if (t.retx_at && t.retx_at <= now) {
    const std::string& bytes = (t.kind == TxnKind::InviteClient || t.kind == TxnKind::NonInviteClient) ? t.request : t.last;
    if (!transmit(t, bytes) && (t.kind == TxnKind::InviteClient || t.kind == TxnKind::NonInviteClient)) {
      t.retx_at = 0;
      t.end_at = 0;
      t.state = TxnState::Terminated;
      TxnId id = t.id;
      report(t, 503, "Service Unavailable");
      if (Txn* live = find(id)) terminate(*live);
      return;
    }
    if (t.kind == TxnKind::InviteClient)
      t.interval *= 2;  // timer A doubles without a cap
    else if (t.state == TxnState::Proceeding && t.kind == TxnKind::NonInviteClient)
      t.interval = t_.t2_ms;
    else
      t.interval = std::min<uint32_t>(t.interval * 2, t_.t2_ms);  // E, G and the 2xx: capped at T2
    t.retx_at = now + t.interval;
  }
  file(t);
}

void TransactionLayer::on_timer() {
  armed_ = UINT64_MAX;  // the environment's timer fired: it must be armed again
  uint64_t now = env_.now_ms();
  for (std::deque<Due>* q = earliest(); q && q->front().at <= now; q = earliest()) {
    TxnId id = q->front().id;
    q->pop_front();
    Txn& t = *find(id);  // earliest() returned a valid entry
    t.filed = 0;
    fire(t, now);
  }
  rearm();
}

void TransactionLayer::on_connection_closed(jn_handle conn) {
  if (!conn) return;
  std::vector<TxnId> dead;
  for (const Txn& t : slab_)
    if (t.id && t.flow.reliable() && t.flow.conn == conn && (t.kind == TxnKind::InviteClient || t.kind == TxnKind::NonInviteClient) &&
        t.status < 200 && t.state != TxnState::Terminated)
      dead.push_back(t.id);
  for (TxnId id : dead) {
    Txn* t = find(id);  // an earlier report may have ended it (the TU cancelled, sent another)
    if (!t || t->status >= 200 || t->state == TxnState::Terminated) continue;
    log(JN_LOG_INFO, "sip: the " + std::string(proto_name(t->flow.proto)) + " connection to " + util::format_addr(t->flow.peer) +
                         " closed: transaction " + std::to_string(id) + " ends with 503");
    t->retx_at = 0;
    t->end_at = 0;
    t->state = TxnState::Terminated;
    report(*t, 503, "Service Unavailable");
    if (Txn* live = find(id)) terminate(*live);
  }
}

namespace {
// "Via: " + the header's first value with rport= / received= filled + its other values + CRLF.
// top: the first value of value; has_received: it carries received= already.
void append_top_via(std::string& out, std::string_view value, std::string_view top, bool has_received,
                    std::string_view received, uint16_t rport) {
  out.append("Via: ");
  size_t at = std::string_view::npos;
  if (rport)  // a bare ;rport gets the source port
    for (size_t i = top.find(";rport"); i != std::string_view::npos; i = top.find(";rport", i + 1))
      if (i + 6 == top.size() || top[i + 6] == ';' || top[i + 6] == ' ') {
        at = i + 6;
        break;
      }
  if (at != std::string_view::npos) {
    char port[8];
    auto r = std::to_chars(port, port + sizeof port, rport);
    out.append(top.substr(0, at)).append("=").append(port, size_t(r.ptr - port)).append(top.substr(at));
  } else {
    out.append(top);
  }
  if (!received.empty() && !has_received) out.append(";received=").append(received);
  out.append(value.substr(top.size())).append("\r\n");
}

void append_top_via(std::string& out, std::string_view value, std::string_view received, uint16_t rport) {
  std::string_view top = first_value(value);
  bool has_received = false;
  raw::param(top, "received", &has_received);
  append_top_via(out, value, top, has_received, received, rport);
}

void append_status_line(std::string& out, int status, std::string_view reason) {
  char code[8];
  auto r = std::to_chars(code, code + sizeof code, status);
  out.append("SIP/2.0 ").append(code, size_t(r.ptr - code)).append(" ").append(reason).append("\r\n");
}

void append_tail(std::string& out, std::string_view server, std::string_view extra_headers, std::string_view body,
                 std::string_view content_type) {
  if (!server.empty()) out.append("Server: ").append(server).append("\r\n");
  out.append(extra_headers);
  if (!body.empty() && !content_type.empty()) out.append("Content-Type: ").append(content_type).append("\r\n");
  char len[24];
  auto r = std::to_chars(len, len + sizeof len, body.size());
  out.append("Content-Length: ").append(len, size_t(r.ptr - len)).append("\r\n\r\n").append(body);
}
}  // namespace

std::string TransactionLayer::build_response(const Message& request, int status, std::string_view reason,
                                             std::string_view to_tag, std::string_view server,
                                             std::string_view extra_headers, std::string_view body,
                                             std::string_view content_type, std::string_view received, uint16_t rport) {
  std::string out;
  build_response(out, request, status, reason, to_tag, server, extra_headers, body, content_type, received, rport);
  return out;
}

namespace {
// A header line of the request that can go into the response as it is: written with the
// canonical name, ": " and a CRLF end (most requests). Its bytes, else empty.
std::string_view verbatim_line(const Header& h, std::string_view name, const char* end) {
  const char* v = h.value.data();
  if (h.name != name || v != h.name.data() + name.size() + 2 || v[-2] != ':' || v[-1] != ' ') return {};
  const char* e = v + h.value.size();
  if (end - e < 2 || e[0] != '\r' || e[1] != '\n') return {};
  return std::string_view(h.name.data(), size_t(e + 2 - h.name.data()));
}
}  // namespace

void TransactionLayer::build_response(std::string& out, const Message& request, int status, std::string_view reason,
                                      std::string_view to_tag, std::string_view server, std::string_view extra_headers,
                                      std::string_view body, std::string_view content_type, std::string_view received,
                                      uint16_t rport) {
  out.clear();
  out.reserve(request.bytes().size() / 2 + 160 + server.size() + extra_headers.size() + body.size());
  append_status_line(out, status, reason);
  const bool dialog_response = status > 100 && status < 300;
  const char* end = request.bytes().data() + request.bytes().size();
  // Lines copied as they are, adjacent ones in one append (From, Call-ID and CSeq usually are).
  const char* run = nullptr;
  size_t run_len = 0;
  auto flush = [&] {
    if (run_len) out.append(run, run_len);
    run_len = 0;
  };
  auto copy = [&](const Header& h, std::string_view name) {
    std::string_view line = verbatim_line(h, name, end);
    if (line.empty()) {
      flush();
      out.append(name).append(": ").append(h.value).append("\r\n");
    } else if (run_len && run + run_len == line.data()) {
      run_len += line.size();
    } else {
      flush();
      run = line.data();
      run_len = line.size();
    }
  };
  bool top_via = true;
  for (const Header& h : request.headers()) {
    switch (h.id) {
      case HeaderId::Via:
        if (top_via && (!received.empty() || rport)) {
          flush();
          // One value (no comma): it is the Via parse() read, whose received= it already knows.
          if (!std::memchr(h.value.data(), ',', h.value.size()))
            append_top_via(out, h.value, h.value, !request.top_via().received.empty(), received, rport);
          else
            append_top_via(out, h.value, received, rport);
        } else {
          copy(h, "Via");
        }
        top_via = false;
        break;
      case HeaderId::To:
        if (request.to_tag().empty() && !to_tag.empty()) {
          flush();
          out.append("To: ").append(h.value).append(";tag=").append(to_tag).append("\r\n");
        } else {
          copy(h, "To");
        }
        break;
      case HeaderId::From:
      case HeaderId::CallId:
      case HeaderId::CSeq:
        copy(h, header_name(h.id));
        break;
      case HeaderId::RecordRoute:
        if (dialog_response) copy(h, "Record-Route");
        break;
      default:
        break;
    }
  }
  flush();
  append_tail(out, server, extra_headers, body, content_type);
}

std::string TransactionLayer::build_response(std::string_view request, int status, std::string_view reason,
                                             std::string_view to_tag, std::string_view extra_headers,
                                             std::string_view body, std::string_view content_type,
                                             std::string_view received, uint16_t rport) {
  std::string out;
  out.reserve(request.size() / 2 + 128 + extra_headers.size() + body.size());
  append_status_line(out, status, reason);
  bool dialog_response = status > 100 && status < 300;
  bool top_via = true;
  raw::for_each_header(request, [&](const raw::Line& l) {
    std::string_view n = raw::long_name(l.name);
    if (top_via && raw::ieq(n, "Via") && (!received.empty() || rport)) {
      top_via = false;
      append_top_via(out, l.value, received, rport);
    } else if (raw::ieq(n, "Via") || raw::ieq(n, "From") || raw::ieq(n, "Call-ID") || raw::ieq(n, "CSeq") ||
        (dialog_response && raw::ieq(n, "Record-Route"))) {
      out.append(n).append(": ").append(l.value).append("\r\n");
    } else if (raw::ieq(n, "To")) {
      out.append("To: ").append(l.value);
      bool has_tag = false;
      raw::param(l.value, "tag", &has_tag);
      if (!has_tag && !to_tag.empty()) out.append(";tag=").append(to_tag);
      out.append("\r\n");
    }
    return true;
  });
  append_tail(out, {}, extra_headers, body, content_type);
  return out;
}

std::string TransactionLayer::build_ack(std::string_view invite, const TxnMsg& resp) {
  TxnMsg req;
  scan(invite, req);
  std::string out;
  out.reserve(invite.size());
  out.append("ACK ").append(req.uri).append(" SIP/2.0\r\n");
  bool via_done = false;
  raw::for_each_header(invite, [&](const raw::Line& l) {
    std::string_view n = raw::long_name(l.name);
    if (raw::ieq(n, "Via") && !via_done) {
      out.append("Via: ").append(first_value(l.value)).append("\r\n");
      via_done = true;
    } else if (raw::ieq(n, "Route") || raw::ieq(n, "From") || raw::ieq(n, "Call-ID") || raw::ieq(n, "Max-Forwards")) {
      out.append(n).append(": ").append(l.value).append("\r\n");
    } else if (raw::ieq(n, "To")) {
      out.append("To: ").append(resp.to.empty() ? l.value : resp.to).append("\r\n");
    }
    return true;
  });
  out.append("CSeq: ").append(std::to_string(req.cseq)).append(" ACK\r\nContent-Length: 0\r\n\r\n");
  return out;
}

std::string TransactionLayer::build_cancel(std::string_view invite) {
  TxnMsg req;
  scan(invite, req);
  std::string out;
  out.append("CANCEL ").append(req.uri).append(" SIP/2.0\r\n");
  bool via_done = false;
  raw::for_each_header(invite, [&](const raw::Line& l) {
    std::string_view n = raw::long_name(l.name);
    if (raw::ieq(n, "Via") && !via_done) {
      out.append("Via: ").append(first_value(l.value)).append("\r\n");
      via_done = true;
    } else if (raw::ieq(n, "Route") || raw::ieq(n, "From") || raw::ieq(n, "To") || raw::ieq(n, "Call-ID") ||
               raw::ieq(n, "Max-Forwards")) {
      out.append(n).append(": ").append(l.value).append("\r\n");
    }
    return true;
  });
  out.append("CSeq: ").append(std::to_string(req.cseq)).append(" CANCEL\r\nContent-Length: 0\r\n\r\n");
  return out;
}

// --- save / restore ------------------------------------------------------------------------------

std::string TransactionLayer::save() const {
  nlohmann::json j;
  j["v"] = 1;
  j["next_id"] = next_id_;
  j["t1"] = t_.t1_ms;
  j["t2"] = t_.t2_ms;
  j["t4"] = t_.t4_ms;
  j["tc"] = t_.timer_c_ms;
  j["td"] = t_.timer_d_ms;
  auto& arr = j["txns"] = nlohmann::json::array();
  ids_.for_each([&](uint64_t, uint32_t slot) {
    const Txn& t = slab_[slot];
    arr.push_back({{"id", t.id},
                   {"kind", static_cast<int>(t.kind)},
                   {"state", static_cast<int>(t.state)},
                   {"key", util::hex_encode(t.key)},
                   {"req", util::hex_encode(t.request)},
                   {"last", util::hex_encode(t.last)},
                   {"proto", static_cast<int>(t.flow.proto)},
                   {"peer", util::format_addr(t.flow.peer)},
                   {"sock", t.flow.sock},
                   {"conn", t.flow.conn},
                   {"retx_at", t.retx_at},
                   {"end_at", t.end_at},
                   {"interval", t.interval},
                   {"status", t.status},
                   {"cancel", t.cancel_wanted},
                   {"ack_key", util::hex_encode(t.ack_key)},
                   {"received", t.received},
                   {"rport", t.rport}});
  });
  return j.dump();
}

bool TransactionLayer::restore(std::string_view bytes, std::string& error) {
  nlohmann::json j = nlohmann::json::parse(bytes, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("v", 0) != 1 || !j.contains("txns") || !j["txns"].is_array()) {
    error = "sip transactions: not a state this build reads";
    return false;
  }
  try {
    std::unordered_map<TxnId, Txn> txns;
    for (auto& e : j["txns"]) {
      Txn t;
      t.id = e.at("id").get<TxnId>();
      if (t.id == 0) throw std::runtime_error("transaction id 0");
      int kind = e.at("kind").get<int>(), state = e.at("state").get<int>();
      if (kind < 1 || kind > 4 || state < 1 || state > 7) throw std::runtime_error("bad kind or state");
      t.kind = static_cast<TxnKind>(kind);
      t.state = static_cast<TxnState>(state);
      if (!util::hex_decode(e.at("key").get<std::string>(), t.key) || !util::hex_decode(e.at("req").get<std::string>(), t.request) ||
          !util::hex_decode(e.at("last").get<std::string>(), t.last) ||
          !util::hex_decode(e.at("ack_key").get<std::string>(), t.ack_key))
        throw std::runtime_error("bad hex");
      t.flow.proto = proto_from_int(e.at("proto").get<int>());
      std::string peer = e.at("peer").get<std::string>();
      if (!peer.empty() && !util::parse_addr(peer, t.flow.peer)) throw std::runtime_error("bad peer address");
      t.flow.sock = e.at("sock").get<jn_handle>();
      t.flow.conn = e.at("conn").get<jn_handle>();
      t.retx_at = e.at("retx_at").get<uint64_t>();
      t.end_at = e.at("end_at").get<uint64_t>();
      t.interval = e.at("interval").get<uint32_t>();
      t.status = e.at("status").get<int>();
      t.cancel_wanted = e.at("cancel").get<bool>();
      t.received = e.value("received", std::string());
      t.rport = e.value("rport", uint16_t(0));
      txns.emplace(t.id, std::move(t));
    }
    queues_.clear();
    by_ack_.clear();
    slab_.clear();
    free_.clear();
    ids_.clear();
    keys_.clear();
    for (auto& [id, rec] : txns) {
      Txn& t = create(id);
      uint32_t slot = t.slot;
      t = std::move(rec);
      t.slot = slot;
      t.keyed = false;
    }
    next_id_ = j.at("next_id").get<TxnId>();
    t_.t1_ms = j.value("t1", t_.t1_ms);
    t_.t2_ms = j.value("t2", t_.t2_ms);
    t_.t4_ms = j.value("t4", t_.t4_ms);
    t_.timer_c_ms = j.value("tc", t_.timer_c_ms);
    t_.timer_d_ms = j.value("td", t_.timer_d_ms);
  } catch (const std::exception& ex) {
    error = std::string("sip transactions: bad state: ") + ex.what();
    return false;
  }
  armed_ = UINT64_MAX - 1;  // force a re-arm: the old instance's deadline is not ours to trust
  std::vector<uint32_t> live;
  ids_.for_each([&](uint64_t, uint32_t slot) { live.push_back(slot); });
  for (uint32_t slot : live) {
    Txn& t = slab_[slot];
    if (t.id >= next_id_) next_id_ = t.id + 1;
    index_key(t);
    if (!t.ack_key.empty()) by_ack_[t.ack_key] = t.id;
    t.filed = 0;
    file(t);
  }
  rearm();
  return true;
}

}  // namespace junction::sip
