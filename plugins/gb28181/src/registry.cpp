#include "registry.hpp"

#include "ids.hpp"

#include <junction/util/addr.hpp>

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

Device* Registry::find(std::string_view id) {
  auto it = devices_.find(id);
  return it == devices_.end() ? nullptr : &it->second;
}

Device& Registry::put(const DeviceConf& c) {
  auto it = devices_.find(std::string_view(c.id));
  if (it == devices_.end()) it = devices_.emplace(c.id, Device{}).first;
  it->second.conf = c;
  return it->second;
}

bool Registry::erase(std::string_view id) {
  auto it = devices_.find(id);
  if (it == devices_.end()) return false;
  if (it->second.live.registered) --registered_;
  devices_.erase(it);
  return true;
}

void Registry::set_registered(Device& d, bool on) {
  if (d.live.registered == on) return;
  d.live.registered = on;
  if (on) ++registered_;
  else --registered_;
}

json Registry::live_to_json() const {
  json a = json::array();
  for (auto& [id, d] : devices_) {
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
