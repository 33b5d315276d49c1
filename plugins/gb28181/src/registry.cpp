#include "registry.hpp"

#include "ids.hpp"

#include <junction/util/addr.hpp>
#include <junction/util/random.hpp>

#include <cstring>

namespace gb {

using nlohmann::json;

namespace {
bool one_of(const std::string& v, std::initializer_list<const char*> set) {
  for (const char* s : set)
    if (v == s) return true;
  return false;
}
}  // namespace

bool device_conf_from_json(const json& j, DeviceConf& out, std::string& error, bool update) {
  if (!j.is_object()) {
    error = "the device must be a JSON object";
    return false;
  }
  static const char* kKeys[] = {"id", "username", "password", "name", "charset", "media_transport", "date", "auto_admitted"};
  for (auto& [k, v] : j.items()) {
    bool known = false;
    for (const char* s : kKeys) known = known || k == s;
    if (!known) {
      error = "unknown field '" + k + "' (known: id, username, password, name, charset, media_transport, date)";
      return false;
    }
  }
  DeviceConf d = out;
  auto str = [&](const char* key, std::string& into, size_t max) {
    if (!j.contains(key)) return true;
    if (!j[key].is_string() || j[key].get_ref<const std::string&>().size() > max) {
      error = std::string(key) + " must be a string of at most " + std::to_string(max) + " bytes";
      return false;
    }
    into = j[key].get<std::string>();
    return true;
  };
  std::string id = d.id;
  if (!str("id", id, 20) || !str("username", d.username, 64) || !str("password", d.password, 128) || !str("name", d.name, 256) ||
      !str("charset", d.charset, 16) || !str("media_transport", d.media_transport, 16) || !str("date", d.date, 8))
    return false;
  if (update && !out.id.empty() && id != out.id) {
    error = "id cannot change";
    return false;
  }
  if (!is_gb_id(id)) {
    error = "id must be a GB code (20 digits), not '" + id + "'";
    return false;
  }
  d.id = id;
  if (!one_of(d.charset, {"auto", "gb2312", "utf-8"})) {
    error = "charset must be auto, gb2312 or utf-8";
    return false;
  }
  if (!one_of(d.media_transport, {"udp", "tcp-passive", "tcp-active"})) {
    error = "media_transport must be udp, tcp-passive or tcp-active";
    return false;
  }
  if (!one_of(d.date, {"gb", "rfc", "off"})) {
    error = "date must be gb, rfc or off";
    return false;
  }
  if (j.contains("auto_admitted")) {
    if (!j["auto_admitted"].is_boolean()) {
      error = "auto_admitted must be true or false";
      return false;
    }
    d.auto_admitted = j["auto_admitted"].get<bool>();
  }
  out = std::move(d);
  return true;
}

json device_conf_to_json(const DeviceConf& d, bool with_password) {
  json j = {{"id", d.id}, {"name", d.name}, {"charset", d.charset}, {"media_transport", d.media_transport}, {"date", d.date}};
  if (!d.username.empty()) j["username"] = d.username;
  if (d.auto_admitted) j["auto_admitted"] = true;
  if (with_password) {
    if (!d.password.empty()) j["password"] = d.password;
  } else {
    j["password_set"] = !d.password.empty();
  }
  return j;
}

Registry::Registry() : slots_(64) {
  // A per-instance seed: the index's layout cannot be planned from outside.
  std::string r;
  seed_ = junction::util::random_bytes(8, r) && r.size() == 8 ? 0 : 0x9E3779B97F4A7C15ull;
  for (char c : r) seed_ = (seed_ << 8) | uint8_t(c);
}

uint64_t Registry::hash(std::string_view id) const {
  uint64_t h = seed_ ^ (id.size() * 0x9E3779B97F4A7C15ull);
  size_t i = 0;
  for (; i + 8 <= id.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, id.data() + i, 8);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
  }
  uint64_t w = 0;
  std::memcpy(&w, id.data() + i, id.size() - i);
  h = (h ^ w) * 0x94d049bb133111ebull;
  return h ^ (h >> 29);
}

bool Registry::matches(const Slot& s, std::string_view id) const {
  if (s.len <= kInline) return s.len == id.size() && std::memcmp(s.key, id.data(), id.size()) == 0;
  return devices_[s.idx].conf.id == id;
}

size_t Registry::probe(std::string_view id) const {
  size_t mask = slots_.size() - 1;
  for (size_t i = hash(id) & mask;; i = (i + 1) & mask)
    if (slots_[i].idx == kEmpty || matches(slots_[i], id)) return i;
}

Device* Registry::find(std::string_view id) {
  const Slot& s = slots_[probe(id)];
  return s.idx == kEmpty ? nullptr : &devices_[s.idx];
}

void Registry::grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.size() * 2, Slot{});
  size_t mask = slots_.size() - 1;
  for (const Slot& s : old) {
    if (s.idx == kEmpty) continue;
    size_t i = hash(devices_[s.idx].conf.id) & mask;
    while (slots_[i].idx != kEmpty) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

Device& Registry::put(const DeviceConf& c) {
  size_t i = probe(c.id);
  if (slots_[i].idx != kEmpty) {
    Device& d = devices_[slots_[i].idx];
    d.conf = c;
    d.ha1 = {};
    return d;
  }
  if ((count_ + 1) * 2 > slots_.size()) {
    grow();
    i = probe(c.id);
  }
  uint32_t idx;
  if (!free_.empty()) {
    idx = free_.back();
    free_.pop_back();
  } else {
    idx = uint32_t(devices_.size());
    devices_.emplace_back();
  }
  Device& d = devices_[idx];
  d = Device{};
  d.conf = c;
  Slot& s = slots_[i];
  s.idx = idx;
  s.len = c.id.size() <= kInline ? uint8_t(c.id.size()) : uint8_t(kInline + 1);
  if (c.id.size() <= kInline) std::memcpy(s.key, c.id.data(), c.id.size());
  ++count_;
  return d;
}

bool Registry::erase(std::string_view id) {
  size_t i = probe(id);
  if (slots_[i].idx == kEmpty) return false;
  uint32_t idx = slots_[i].idx;
  if (devices_[idx].live.registered) --registered_;
  devices_[idx] = Device{};  // conf.id empty: free
  free_.push_back(idx);
  --count_;
  // Backward-shift deletion (linear probing): no tombstones, probe sequences stay short.
  size_t mask = slots_.size() - 1;
  slots_[i] = Slot{};
  for (size_t j = (i + 1) & mask; slots_[j].idx != kEmpty; j = (j + 1) & mask) {
    size_t home = hash(devices_[slots_[j].idx].conf.id) & mask;
    // Move j back to the hole i when its home is not in the cyclic range (i, j].
    bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (stays) continue;
    slots_[i] = slots_[j];
    slots_[j] = Slot{};
    i = j;
  }
  return true;
}

std::pair<size_t, size_t> Registry::shape() const {
  size_t longest = 0, mask = slots_.size() - 1;
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].idx == kEmpty) continue;
    size_t home = hash(devices_[slots_[i].idx].conf.id) & mask;
    longest = std::max(longest, ((i - home) & mask) + 1);
  }
  return {slots_.size(), longest};
}

void Registry::set_registered(Device& d, bool on) {
  if (d.live.registered == on) return;
  d.live.registered = on;
  if (on) ++registered_;
  else --registered_;
}

json Registry::live_to_json() const {
  json a = json::array();
  for (const Device& d : devices_) {
    if (d.conf.id.empty()) continue;
    const std::string& id = d.conf.id;
    const DeviceLive& l = d.live;
    if (!l.registered && l.registrations == 0) continue;
    a.push_back({{"id", id},
                 {"reg", l.registered},
                 {"proto", int(l.flow.proto)},
                 {"peer", junction::util::format_addr(l.flow.peer)},
                 {"sock", l.flow.sock},
                 {"conn", l.flow.conn},
                 {"contact", l.contact},
                 {"call_id", l.call_id},
                 {"cseq", l.cseq},
                 {"expires_at", l.expires_at},
                 {"registered_at", l.registered_at},
                 {"last_keepalive", l.last_keepalive},
                 {"last_seen", l.last_seen},
                 {"registrations", l.registrations},
                 {"keepalives", l.keepalives},
                 {"offline_reason", l.offline_reason}});
  }
  return a;
}

size_t Registry::live_from_json(const json& j) {
  size_t n = 0;
  if (!j.is_array()) return 0;
  for (auto& e : j) {
    if (!e.is_object() || !e.contains("id") || !e["id"].is_string()) continue;
    Device* d = find(e["id"].get<std::string>());
    if (!d) continue;  // deleted meanwhile (the store is the truth for provisioning)
    DeviceLive l;
    l.flow.proto = e.value("proto", 1) == 2 ? junction::sip::Proto::Tcp : junction::sip::Proto::Udp;
    junction::util::parse_addr(e.value("peer", std::string()), l.flow.peer);
    l.flow.sock = e.value("sock", jn_handle(0));
    l.flow.conn = e.value("conn", jn_handle(0));
    l.contact = e.value("contact", std::string());
    l.call_id = e.value("call_id", std::string());
    l.cseq = e.value("cseq", 0u);
    l.expires_at = e.value("expires_at", uint64_t(0));
    l.registered_at = e.value("registered_at", uint64_t(0));
    l.last_keepalive = e.value("last_keepalive", uint64_t(0));
    l.last_seen = e.value("last_seen", uint64_t(0));
    l.registrations = e.value("registrations", uint64_t(0));
    l.keepalives = e.value("keepalives", uint64_t(0));
    l.offline_reason = e.value("offline_reason", std::string());
    set_registered(*d, false);
    d->live = std::move(l);
    d->live.registered = false;
    set_registered(*d, e.value("reg", false));
    ++n;
  }
  return n;
}

}  // namespace gb
