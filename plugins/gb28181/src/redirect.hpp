// Registration redirect (GB/T 28181-2022 注册重定向): after a successful digest the platform may
// answer 302 with Contact sip:<server A id>@ip:port and Expires instead of registering the
// device. Which server: the longest matching device-ID prefix (civil code) ("prefix" policy; no
// match: the device registers here), or the server with the fewest devices sent to it
// ("least_loaded"). An assignment is sticky for the 302's Expires, so a device that comes back
// (server A refused it or went offline) is sent to the same server while that is still fresh,
// and re-balanced after.
#pragma once

#include "conf.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace gb {

class Redirector {
 public:
  explicit Redirector(const RedirectConf& c);
  bool enabled() const { return conf_.enabled; }
  // The server for this device, or nullptr: register it here.
  const RedirectServer* pick(std::string_view device_id, uint64_t now_ms);
  // Devices currently assigned to each server (by index), for admin and the tests.
  std::vector<size_t> loads(uint64_t now_ms) const;

  nlohmann::json to_json() const;
  void from_json(const nlohmann::json& j);

 private:
  struct Assignment {
    size_t server = 0;
    uint64_t until = 0;
  };
  RedirectConf conf_;
  std::unordered_map<std::string, Assignment> assigned_;
};

}  // namespace gb
