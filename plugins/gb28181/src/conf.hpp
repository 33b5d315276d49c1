// The plugin's conf table (conf/plugins/gb28181.toml), read and checked in one place. Every key
// is documented in README.md with its default.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
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

// [play]: INVITE sessions and viewers (src/play/). Defaults documented in README.md.
struct PlayConfKeys {
  std::string transport = "udp";       // udp | tcp_passive | tcp_active (a device's "media_transport" overrides)
  std::string media_ip;                // c= of offers ("" = the media bind address, or the SIP address)
  uint32_t download_speed = 4;         // a=downloadspeed of downloads (0: not sent)
  uint32_t grace_ms = 10000;           // last viewer gone -> BYE after this
  bool restart_on_timeout = true;      // RTP timeout with viewers: re-INVITE (false: end the viewers)
  uint32_t backoff_initial_ms = 1000;  // first restart delay (doubles per failure)
  uint32_t backoff_max_ms = 30000;
  uint32_t restart_attempts = 5;       // failures in a row before viewers are ended (0 = forever)
  std::string download_dir;  // "" = <the plugin's state dir (ABI 2.2)>/downloads; else this path
};

// [media]: the receivers / senders (IngestConf, src/media/ingest.hpp).
struct MediaConfKeys {
  std::string port_range = "media";    // the core's [ports.NAME] range (the shipped junction.toml has [ports.media])
  std::string bind_ip = "0.0.0.0";
  uint32_t rtp_timeout_ms = 10000;     // 0 = never
  uint32_t reorder_window = 16;
  uint32_t reorder_flush_ms = 100;
  uint32_t max_video_frame = 4u << 20;
  uint32_t stats_interval_ms = 1000;
  bool gop_cache = false;                 // keep the last GOP per live stream for catch-up joins
  uint32_t gop_cache_max_bytes = 4u << 20;  // a larger GOP is not cached (counted)
};

// [clients]: SIP clients that INVITE the platform for a channel (client-initiated live view,
// src/play/client_invite.cpp). Defaults documented in README.md.
struct ClientConfKeys {
  bool auth = true;                            // digest required (users below, or a provisioned device's credentials)
  std::map<std::string, std::string> users;    // username -> password
  uint32_t max_per_channel = 0;                // clients per channel (0 = no limit); beyond: 486
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
  // REGISTER without a server transaction (RFC 3261 8.2.7, as Kamailio's sl_send_reply): a UDP
  // retransmission runs the registrar again (idempotent); read when the plugin loads (or reloads).
  bool stateless_register = true;
  // The plain keepalive MESSAGE likewise (its retransmission is answered again, counted once).
  bool stateless_keepalive = true;
  std::string snapshot_listen;        // HTTP endpoint for snapshot uploads ("" = none)
  std::string snapshot_url;           // the UploadURL base devices get (default http://<snapshot_listen>)
  uint32_t snapshot_session_ttl_s = 3600;  // an upload session (SessionID) is accepted this long
  RedirectConf redirect;
  PlayConfKeys play;
  MediaConfKeys media;
  ClientConfKeys clients;
};

using ConfReport = std::function<void(const std::string& key, const std::string& reason)>;

// Reads and checks the conf; the first problem is reported (key, reason) and thrown as
// std::invalid_argument.
Conf read_conf(const nlohmann::json& j, const ConfReport& report);

}  // namespace gb
