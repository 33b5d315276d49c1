// The devices the platform knows: their provisioning (kept in the core's store, key "dev/<id>")
// and their live state (registration, address, keepalive), which a hot reload carries over
// (state_codec.hpp). No SIP here: the registrar and the plugin drive it.
#pragma once

#include <junction/sip/transport.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <algorithm>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace gb {

// What an operator provisions (admin "add" / "update").
struct DeviceConf {
  std::string id;               // the device's GB code (the From/To user of its requests)
  std::string username;         // digest username (empty: the device ID); some devices sign as "admin"
  std::string password;         // empty: the platform-wide password
  std::string name;
  std::string charset = "auto";  // outgoing bodies: "gb2312" (GB18030 bytes), "utf-8", "auto" (as the device sends)
  std::string media_transport = "udp";  // preferred media transport: "udp", "tcp-passive", "tcp-active"
  std::string date = "gb";       // Date in the 200 of a REGISTER: "gb" (yyyy-MM-ddTHH:mm:ss.SSS), "rfc" (RFC 3261), "off"
  bool auto_admitted = false;    // admitted by auto_admit, not provisioned

  std::string_view auth_user() const { return username.empty() ? std::string_view(id) : std::string_view(username); }
};

// Validates and fills a DeviceConf from an admin body / a store record. update: only the fields
// present change (id must match). False with the reason in error.
bool device_conf_from_json(const nlohmann::json& j, DeviceConf& out, std::string& error, bool update = false);
// The store record (password included) / the admin view (password_set instead).
nlohmann::json device_conf_to_json(const DeviceConf& d, bool with_password);

struct DeviceLive {
  bool registered = false;
  junction::sip::Flow flow;    // where its last request came from: how it is reached
  std::string contact;         // its Contact URI
  std::string call_id;         // of its registration
  uint32_t cseq = 0;
  uint64_t reg_fp = 0;         // fingerprint of the REGISTER that set call_id/cseq (stateless: its retransmissions)
  uint64_t expires_at = 0;     // ms (host clock)
  uint64_t registered_at = 0;  // ms
  uint64_t last_keepalive = 0; // ms, 0: none since it registered
  uint64_t last_seen = 0;      // ms: any request
  uint64_t registrations = 0;  // how many times it registered (new registrations, not refreshes)
  uint64_t keepalives = 0;
  std::string offline_reason;  // why it last went offline
};

struct Device {
  DeviceConf conf;
  DeviceLive live;
};

class Registry {
 public:
  Device* find(std::string_view id);
  // Adds or replaces the provisioning (live state kept).
  Device& put(const DeviceConf& c);
  bool erase(std::string_view id);
  size_t size() const { return devices_.size(); }
  size_t registered() const { return registered_; }
  // Hash table shape (admin stats): buckets and the longest chain.
  std::pair<size_t, size_t> shape() const {
    size_t longest = 0;
    for (size_t b = 0; b < devices_.bucket_count(); ++b) longest = std::max(longest, devices_.bucket_size(b));
    return {devices_.bucket_count(), longest};
  }
  // Keep the registered count right: every change of live.registered goes through here.
  void set_registered(Device& d, bool on);
  template <class F>
  void for_each(F&& f) {
    for (auto& [id, d] : devices_) f(d);
  }

  // The live state of every registered device (hot reload).
  nlohmann::json live_to_json() const;
  // Restores what live_to_json wrote for the devices that exist; returns how many.
  size_t live_from_json(const nlohmann::json& j);

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, Device, Hash, std::equal_to<>> devices_;
  size_t registered_ = 0;
};

}  // namespace gb
