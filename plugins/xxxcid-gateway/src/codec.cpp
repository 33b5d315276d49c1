#include "codec.hpp"

#include <nlohmann/json.hpp>

#include <cstring>

namespace xxxcid {

namespace {

constexpr char kMagic[kHeaderLen] = {'X', 'X', 'X', 'C', 'I', 'D'};

bool addr_char(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '.' || c == '_' || c == '-';
}

// A 20-byte field: the address, then only NUL or space padding.
bool read_addr(const uint8_t* p, std::string& out) {
  size_t n = 0;
  while (n < kAddrLen && addr_char(p[n])) ++n;
  if (n == 0) return false;
  for (size_t i = n; i < kAddrLen; ++i)
    if (p[i] != 0 && p[i] != ' ') return false;
  out.assign(reinterpret_cast<const char*>(p), n);
  return true;
}

bool read_party(const uint8_t* p, Party& out) {
  if (!read_addr(p, out.addr)) return false;
  std::memcpy(out.ip.data(), p + kAddrLen, 4);
  return true;
}

void put_party(std::string& out, const Party& p) {
  out.append(p.addr);
  out.append(kAddrLen - p.addr.size(), '\0');
  out.append(reinterpret_cast<const char*>(p.ip.data()), 4);
}

std::optional<Packet> fail(Error* err, Error e) {
  if (err) *err = e;
  return std::nullopt;
}

bool uid_char(unsigned char c) { return addr_char(c); }

}  // namespace

const char* to_string(Error e) {
  switch (e) {
    case Error::kNone: return "ok";
    case Error::kShort: return "short packet";
    case Error::kHeader: return "wrong header";
    case Error::kCmd: return "unknown cmd";
    case Error::kType: return "unknown type";
    case Error::kOp: return "unknown operation";
    case Error::kLength: return "bad length for cmd";
    case Error::kAddress: return "bad address field";
    case Error::kCount: return "bad address count";
  }
  return "?";
}

bool valid_op(uint8_t op) {
  return op == kOpCall || op == kOpBusy || op == kOpAnswer || op == kOpTalk || op == kOpUnlock || op == kOpHangup;
}

bool valid_address(std::string_view a) {
  if (a.empty() || a.size() > kAddrLen) return false;
  for (unsigned char c : a)
    if (!addr_char(c)) return false;
  return true;
}

std::optional<Packet> parse(const uint8_t* d, size_t len, Error* err) {
  if (err) *err = Error::kNone;
  if (!d || len < kHeaderLen + 2) return fail(err, Error::kShort);
  if (std::memcmp(d, kMagic, kHeaderLen) != 0) return fail(err, Error::kHeader);
  Packet p;
  p.cmd = d[6];
  p.type = d[7];
  if (p.cmd != kCmdCall && p.cmd != kCmdResolve) return fail(err, Error::kCmd);
  if (p.type != kTypeRequest && p.type != kTypeReply) return fail(err, Error::kType);
  size_t off = 8;
  if (p.cmd == kCmdResolve) {
    if (len < off + kAddrLen + 4) return fail(err, Error::kLength);
    if (!read_party(d + off, p.caller)) return fail(err, Error::kAddress);
    off += kAddrLen + 4;
    if (p.type == kTypeRequest) {
      if (len != kResolveLen) return fail(err, Error::kLength);
      if (!read_party(d + off, p.callee)) return fail(err, Error::kAddress);
      return p;
    }
    if (len < off + 1) return fail(err, Error::kLength);
    size_t n = d[off++];
    if (n == 0 || n > kMaxResolved) return fail(err, Error::kCount);
    if (len != off + n * (kAddrLen + 4)) return fail(err, Error::kLength);
    for (size_t i = 0; i < n; ++i, off += kAddrLen + 4) {
      Party r;
      if (!read_party(d + off, r)) return fail(err, Error::kAddress);
      p.resolved.push_back(std::move(r));
    }
    return p;
  }
  if (len < 9) return fail(err, Error::kLength);
  p.op = d[8];
  if (!valid_op(p.op)) return fail(err, Error::kOp);
  if (len != kCallLen && len != kCallMcastLen) return fail(err, Error::kLength);
  off = 9;
  if (!read_party(d + off, p.caller)) return fail(err, Error::kAddress);
  off += kAddrLen + 4;
  if (!read_party(d + off, p.callee)) return fail(err, Error::kAddress);
  off += kAddrLen + 4;
  if (len == kCallMcastLen) {
    p.has_mcast = true;
    p.mcast = d[off];
    std::memcpy(p.group.data(), d + off + 1, 4);
  }
  return p;
}

std::string serialise(const Packet& p) {
  auto ok = [](const Party& x) { return valid_address(x.addr); };
  std::string out(kMagic, kHeaderLen);
  out.push_back(static_cast<char>(p.cmd));
  out.push_back(static_cast<char>(p.type));
  if (p.cmd == kCmdCall) {
    if (!ok(p.caller) || !ok(p.callee)) return {};
    out.push_back(static_cast<char>(p.op));
    put_party(out, p.caller);
    put_party(out, p.callee);
    if (p.has_mcast) {
      out.push_back(static_cast<char>(p.mcast));
      out.append(reinterpret_cast<const char*>(p.group.data()), 4);
    }
    return out;
  }
  if (!ok(p.caller)) return {};
  put_party(out, p.caller);
  if (p.type == kTypeRequest) {
    if (!ok(p.callee)) return {};
    put_party(out, p.callee);
    return out;
  }
  if (p.resolved.empty() || p.resolved.size() > kMaxResolved) return {};
  out.push_back(static_cast<char>(p.resolved.size()));
  for (const Party& r : p.resolved) {
    if (!ok(r)) return {};
    put_party(out, r);
  }
  return out;
}

std::string ip_text(const Ip4& ip) {
  return std::to_string(ip[0]) + "." + std::to_string(ip[1]) + "." + std::to_string(ip[2]) + "." + std::to_string(ip[3]);
}

// --- phone orders ------------------------------------------------------------------------------

const char* to_string(OrderError e) {
  switch (e) {
    case OrderError::kNone: return "ok";
    case OrderError::kJson: return "not JSON";
    case OrderError::kNotObject: return "not a JSON object";
    case OrderError::kOrder: return "missing or unknown order";
    case OrderError::kField: return "a field is not a string";
    case OrderError::kUid: return "missing or bad uid";
    case OrderError::kAddress: return "bad doorAddress or roomAddress";
    case OrderError::kCommunity: return "bad community";
  }
  return "?";
}

bool phone_order(std::string_view o) {
  return o == "heartbeat" || o == "call ok" || o == "talk" || o == "unlock" || o == "over" || o == "over success" ||
         o == "enable_video";
}

std::optional<Order> parse_order(std::string_view text, OrderError* err) {
  auto fail_o = [&](OrderError e) -> std::optional<Order> {
    if (err) *err = e;
    return std::nullopt;
  };
  if (err) *err = OrderError::kNone;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return fail_o(OrderError::kJson);
  if (!j.is_object()) return fail_o(OrderError::kNotObject);
  Order o;
  auto get = [&](const char* key, std::string& out) -> bool {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return true;
    if (!it->is_string()) return false;
    out = it->get<std::string>();
    return true;
  };
  if (!get("order", o.order) || !phone_order(o.order)) return fail_o(OrderError::kOrder);
  if (!get("doorAddress", o.door) || !get("roomAddress", o.room) || !get("uid", o.uid) ||
      !get("community", o.community))
    return fail_o(OrderError::kField);
  if (o.community.empty() && !get("communit y", o.community)) return fail_o(OrderError::kField);
  if (o.uid.empty() || o.uid.size() > 64) return fail_o(OrderError::kUid);
  for (unsigned char c : o.uid)
    if (!uid_char(c)) return fail_o(OrderError::kUid);
  if ((!o.door.empty() && !valid_address(o.door)) || (!o.room.empty() && !valid_address(o.room)))
    return fail_o(OrderError::kAddress);
  if (o.community.size() > 128) return fail_o(OrderError::kCommunity);
  for (unsigned char c : o.community)
    if (c < 0x20 || c == 0x7f) return fail_o(OrderError::kCommunity);
  return o;
}

std::string serialise_order(const Order& o) {
  nlohmann::json j = nlohmann::json::object();
  j["order"] = o.order;
  j["doorAddress"] = o.door;
  j["roomAddress"] = o.room;
  j["uid"] = o.uid;
  j["community"] = o.community;
  // Invalid UTF-8 (never produced by parse_order) is replaced rather than thrown.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace xxxcid
