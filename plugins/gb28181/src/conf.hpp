// The plugin's conf table (conf/plugins/gb28181.toml), read and checked in one place. Every key
// is documented in README.md with its default.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace gb {

struct RedirectServer {
  std::string id;                     // SIP server A's 20-digit code (the Contact user)
  std::string address;                // "ip:port" it listens on
  std::vector<std::string> prefixes;  // device-ID prefixes (civil codes) it serves
};

struct RedirectConf {
  bool enabled = false;
  std::string policy = "prefix";  // "prefix" (longest prefix; no match: register here) or "least_loaded"
  uint32_t expires_s = 3600;      // Expires of the 302
  std::vector<RedirectServer> servers;
};

struct Conf {
  std::string sip_id;        // the platform's 20-digit code (required)
  std::string domain;        // default: the first 10 digits of sip_id
  std::string udp_listen = "127.0.0.1:5060";
  std::string tcp_listen = "127.0.0.1:5060";  // empty: no TCP
  std::string realm;         // default: domain
  std::string password;      // platform-wide password (devices without their own)
  bool auto_admit = false;   // unknown device IDs may register with the platform password
  uint32_t keepalive_interval_s = 60;  // the document's default
  uint32_t keepalive_count = 3;        // missed keepalives before offline (the document's default)
  std::string keepalive_policy = "strict";  // "strict": no keepalive = offline; "registration": online while registered
  uint32_t min_expires_s = 60;        // below: 423 with Min-Expires
  uint32_t max_expires_s = 86400;     // above: granted this much
  uint32_t default_expires_s = 3600;  // REGISTER without Expires
  bool date_header = true;            // Date in the 200 of a REGISTER (time sync); devices may override
  int32_t date_utc_offset_min = 480;  // the GB Date has no zone: the clock it states (China: UTC+8)
  uint32_t nonce_ttl_s = 300;
  std::string nonce_secret;           // HMAC key of nonces (random when empty: nonces die with a restart)
  uint32_t t1_ms = 500, t2_ms = 4000, t4_ms = 5000;
  uint32_t query_timeout_ms = 10000;  // queries and commands with a Response
  uint32_t max_devices = 200000;      // registry size limit (auto-admission stops there)
  bool log_each = true;               // a log line per REGISTER / keepalive (the benchmark turns it off)
  std::string snapshot_listen;        // HTTP endpoint for snapshot uploads ("" = none)
  std::string snapshot_url;           // the UploadURL base devices get (default http://<snapshot_listen>)
  uint32_t snapshot_session_ttl_s = 3600;  // an upload session (SessionID) is accepted this long
  RedirectConf redirect;
};

using ConfReport = std::function<void(const std::string& key, const std::string& reason)>;

// Reads and checks the conf; the first problem is reported (key, reason) and thrown as
// std::invalid_argument.
Conf read_conf(const nlohmann::json& j, const ConfReport& report);

}  // namespace gb
