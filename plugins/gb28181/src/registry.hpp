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
#include <deque>
#include <vector>

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
  uint64_t ka_fp = 0;          // fingerprint of the last keepalive counted (stateless: its retransmissions)
  uint64_t last_seen = 0;      // ms: any request
  uint64_t registrations = 0;  // how many times it registered (new registrations, not refreshes)
  uint64_t keepalives = 0;
  std::string offline_reason;  // why it last went offline
};

// HA1 = MD5(user:realm:password) of a device, computed at its first digest check and kept: one
// MD5 less per REGISTER. It is used only while fp (the registrar's keyed hash of the username and
// password it was made from) still matches, and never copied, so a changed password or username
// can never meet a stale HA1.
struct Ha1Cache {
  char hex[32];
  uint64_t fp = 0;
  bool set = false;
  Ha1Cache() = default;
  Ha1Cache(const Ha1Cache&) {}
  Ha1Cache& operator=(const Ha1Cache&) {
    set = false;
    return *this;
  }
};

struct Device {
  DeviceConf conf;
  DeviceLive live;
  Ha1Cache ha1;
};

// Devices by ID: the Devices in a deque (dense, stable addresses: a Device* stays valid until
// that device is erased), found through an open-addressing index whose slots hold the ID bytes
// inline (GB codes are 18 or 20 digits), so a lookup is one hash, usually one slot, and no
// pointer chase before the Device itself. The profile of the keepalive path had the
// std::unordered_map<std::string> lookup it replaces at 9 %.
class Registry {
 public:
  Registry();
  Device* find(std::string_view id);
  // Adds or replaces the provisioning (live state kept).
  Device& put(const DeviceConf& c);
  bool erase(std::string_view id);
  size_t size() const { return count_; }
  size_t registered() const { return registered_; }
  // Index shape (admin stats): slots and the longest probe sequence.
  std::pair<size_t, size_t> shape() const;
  // Keep the registered count right: every change of live.registered goes through here.
  void set_registered(Device& d, bool on);
  template <class F>
  void for_each(F&& f) {
    for (Device& d : devices_)
      if (!d.conf.id.empty()) f(d);
  }

  // The live state of every registered device (hot reload).
  nlohmann::json live_to_json() const;
  // Restores what live_to_json wrote for the devices that exist; returns how many.
  size_t live_from_json(const nlohmann::json& j);

 private:
  static constexpr uint32_t kEmpty = UINT32_MAX;
  static constexpr size_t kInline = 20;
  struct Slot {
    uint32_t idx = kEmpty;  // into devices_
    uint8_t len = 0;        // of the ID; > kInline: compare with devices_[idx].conf.id
    char key[kInline];
  };
  uint64_t hash(std::string_view id) const;
  bool matches(const Slot& s, std::string_view id) const;
  // The slot holding id, or the empty slot where it would go.
  size_t probe(std::string_view id) const;
  void grow();

  std::deque<Device> devices_;   // erased entries have an empty conf.id and sit in free_
  std::vector<uint32_t> free_;
  std::vector<Slot> slots_;      // power of two, at most half full
  uint64_t seed_;
  size_t count_ = 0;
  size_t registered_ = 0;
};

}  // namespace gb
