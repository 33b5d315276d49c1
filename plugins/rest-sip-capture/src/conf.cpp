#include "aac.hpp"
#include "plugin.hpp"

#include <junction/util/addr.hpp>
#include <junction/util/config.hpp>

#include <stdexcept>

namespace capture {

Conf read_conf(const junction::sdk::Host& host) {
  Conf c;
  junction::util::ConfigReader r(host.config(), [&](const std::string& k, const std::string& why) { host.config_error(k, why); });
  r.known_keys({"listen", "api_token", "sip_listen", "sip_host", "media_ip", "sdp_ip", "port_range", "media_loops",
                "rtp_timeout_ms", "rtcp_interval_ms", "keyframe_interval_ms", "keyframe_sip_info", "register_expires",
                "default_caller", "offer_opus", "dtmf_payload_type", "max_calls", "ended_keep_s", "bus_publish", "node_id",
                "user_agent", "backend_url", "backend_token", "backend_timeout_ms", "backend_retries", "backend_backoff_ms",
                "backend_backoff_max_ms", "backend_queue", "rtmp_reconnect_ms", "rtmp_reconnect_max_ms", "rtmp_max_attempts",
                "rtmp_max_queue_bytes", "rtmp_audio", "sip_transport", "sip_tls_ca_file", "rtmp_write_ms"});
  r.str("listen", c.listen, true);
  r.str("api_token", c.api_token);
  r.str("sip_listen", c.sip_listen, true);
  r.str("sip_host", c.sip_host);
  std::string transport = "udp";
  r.str("sip_transport", transport);
  if (auto t = parse_sip_transport(transport)) c.sip_transport = *t;
  else if (r.ok()) r.fail("sip_transport", "must be \"udp\", \"tcp\" or \"tls\"");
  r.str("sip_tls_ca_file", c.sip_tls_ca_file);
  r.str("media_ip", c.media_ip);
  r.str("sdp_ip", c.sdp_ip);
  r.str("port_range", c.port_range, true);
  r.boolean("media_loops", c.media_loops);
  r.integer("rtp_timeout_ms", c.rtp_timeout_ms, 1000, 3600000);
  r.integer("rtcp_interval_ms", c.rtcp_interval_ms, 500, 60000);
  r.integer("keyframe_interval_ms", c.keyframe_interval_ms, 100, 60000);
  r.boolean("keyframe_sip_info", c.keyframe_sip_info);
  r.integer("register_expires", c.register_expires, 60, 86400);
  r.str("default_caller", c.default_caller, true);
  r.boolean("offer_opus", c.offer_opus);
  r.integer("dtmf_payload_type", c.dtmf_payload_type, 96, 127);
  r.integer("max_calls", c.max_calls, 1, 100000);
  r.integer("ended_keep_s", c.ended_keep_s, 0, 86400);
  r.boolean("bus_publish", c.bus_publish);
  r.str("node_id", c.node_id);
  r.str("user_agent", c.user_agent);
  r.str("backend_url", c.backend_url);
  r.str("backend_token", c.backend_token);
  r.integer("backend_timeout_ms", c.backend_timeout_ms, 100, 120000);
  r.integer("backend_retries", c.backend_retries, 0, 100);
  r.integer("backend_backoff_ms", c.backend_backoff_ms, 10, 600000);
  r.integer("backend_backoff_max_ms", c.backend_backoff_max_ms, 10, 3600000);
  r.integer("backend_queue", c.backend_queue, 1, 1000000);
  r.integer("rtmp_reconnect_ms", c.rtmp_reconnect_ms, 10, 600000);
  r.integer("rtmp_reconnect_max_ms", c.rtmp_reconnect_max_ms, 10, 3600000);
  r.integer("rtmp_max_attempts", c.rtmp_max_attempts, 0, 1000000);
  r.integer("rtmp_max_queue_bytes", c.rtmp_max_queue_bytes, 65536, 256 << 20);
  r.integer("rtmp_write_ms", c.rtmp_write_ms, 0, 1000);
  std::string audio = "g711";
  r.str("rtmp_audio", audio);
  if (r.ok() && audio != "g711" && audio != "aac") r.fail("rtmp_audio", "must be \"g711\" or \"aac\"");
  if (r.ok() && audio == "aac" && !AacEncoder::available())
    r.fail("rtmp_audio", "\"aac\" needs libavcodec, which this build does not have");
  c.rtmp_audio_aac = audio == "aac";
  if (r.ok() && !c.backend_url.empty() && c.backend_url.rfind("http://", 0) != 0 && c.backend_url.rfind("https://", 0) != 0)
    r.fail("backend_url", "must be an http:// or https:// URL");
  if (r.ok() && c.default_caller.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") != std::string::npos)
    r.fail("default_caller", "must be a SIP user ([A-Za-z0-9-_.])");
  jn_addr a{};
  if (r.ok() && !junction::util::parse_addr(c.sip_listen, a)) r.fail("sip_listen", "must be ip:port");
  if (r.ok() && !junction::util::parse_addr(c.listen, a)) r.fail("listen", "must be ip:port");
  if (!r.ok()) throw std::runtime_error(r.error()->key + ": " + r.error()->reason);
  if (c.sip_host.empty()) {
    junction::util::parse_addr(c.sip_listen, a);
    c.sip_host = junction::util::format_ip(a);
    if (c.sip_host == "0.0.0.0" || c.sip_host == "::") c.sip_host = "127.0.0.1";
  }
  if (c.media_ip.empty()) c.media_ip = c.sip_host;
  if (c.sdp_ip.empty()) c.sdp_ip = c.media_ip;
  return c;
}

}  // namespace capture
