// gb-ingest-bench: a bench-only plugin that drives gb28181's media ingest (src/media, the very
// MediaIngest the gb28181 plugin uses) without SIP: at start it opens `streams` receivers from the
// core's port range `port_range` (UDP pairs or TCP passive listeners, round-robin over the media
// loops) and answers each with SSRC ssrc_base + i, as gbgen sends them (port 20000 + 2i when the
// range starts at 20000 and is free). Admin verb "stats" -> totals over every stream.
// Conf (conf/plugins/gb-ingest-bench.toml): streams (100), transport ("udp" | "tcp_passive"),
// ssrc_base (100000000), port_range ("gb"), bind_ip ("127.0.0.1"). Never loaded by the suite.
#include "ingest.hpp"

#include <junction/plugin.hpp>

namespace {
using junction::sdk::to_sv;
using nlohmann::json;
using namespace gb::media;

class Bench : public junction::sdk::Plugin, public IngestListener {
 public:
  Bench(junction::sdk::Host h, const jn_create_args&) : Plugin(h), ing_(h, *this) {}

  jn_status start() override {
    json c = host().config();
    IngestConf conf;
    conf.port_range = c.value("port_range", std::string("gb"));
    conf.bind_ip = c.value("bind_ip", std::string("127.0.0.1"));
    conf.rtp_timeout_ms = 0;
    ing_.configure(conf);
    Transport t = Transport::Udp;
    parse_transport(c.value("transport", std::string("udp")), t);
    uint32_t n = c.value("streams", 100u), base = c.value("ssrc_base", 100000000u);
    std::vector<uint32_t> fillers;
    for (uint32_t i = 0; i < n; ++i) {
      OpenRequest r;
      r.device_id = "bench";
      r.channel_id = "s" + std::to_string(i);
      r.transport = t;
      r.ssrc = base + i;
      Opened o = ing_.open(r);
      if (!o.id) {
        host().set_error("open " + std::to_string(i) + ": " + o.error);
        return JN_ERR_LIMIT;
      }
      std::string err;
      Answer a;
      a.has_ssrc = true;
      a.ssrc = base + i;
      ing_.answer(o.id, a, err);
      ports_.push_back(o.port);
      if (t == Transport::TcpPassive) {
        // A TCP listener takes one port, gbgen connects to base + 2i: the odd port in between is
        // taken by a filler receiver, closed once all are open.
        Opened f = ing_.open(r);
        if (f.id) fillers.push_back(f.id);
      }
    }
    for (uint32_t id : fillers) ing_.close(id, "bench filler");
    host().info("gb-ingest-bench: " + std::to_string(n) + " receivers, first port " +
                std::to_string(ports_.empty() ? 0 : ports_.front()) + ", last " + std::to_string(ports_.empty() ? 0 : ports_.back()));
    return JN_OK;
  }
  void on_udp(jn_handle s, uint64_t c, const jn_datagram* d, size_t n) override { ing_.on_udp(s, c, d, n); }
  void on_tcp(const jn_tcp_event& ev) override { ing_.on_tcp(ev); }
  void on_timer(jn_handle t, uint64_t c) override { ing_.on_timer(t, c); }
  void on_post(uint64_t c) override { ing_.on_post(c); }
  void on_ingest_event(const Event& ev) override {
    if (ev.type != EventType::FirstKeyframe) host().info(std::string("gb-ingest-bench: ") + to_string(ev.type) + " " + ev.stream + ": " + ev.detail);
  }
  void on_admin(const jn_admin_request& r) override {
    if (to_sv(r.verb) != "stats") {
      host().admin_reply(r.reply, 404, R"({"error":"stats"})");
      return;
    }
    json t = {{"streams", 0}, {"packets", 0}, {"bytes", 0}, {"lost", 0}, {"reordered", 0}, {"wrong_ssrc", 0},
              {"malformed", 0}, {"tcp_resyncs", 0}, {"video_frames", 0}, {"audio_frames", 0}, {"keyframes", 0},
              {"dropped_frames", 0}, {"demux_resyncs", 0}, {"with_keyframe", 0}};
    bool ports_ok = true;
    for (size_t i = 0; i + 1 < ports_.size(); ++i) ports_ok &= ports_[i + 1] == ports_[i] + 2;
    for (auto& s : ing_.all_stats()) {
      t["streams"] = t["streams"].get<uint64_t>() + 1;
      auto add = [&](const char* k, uint64_t v) { t[k] = t[k].get<uint64_t>() + v; };
      add("packets", s.packets);
      add("bytes", s.bytes);
      add("lost", s.lost);
      add("reordered", s.reordered);
      add("wrong_ssrc", s.wrong_ssrc);
      add("malformed", s.malformed);
      add("tcp_resyncs", s.tcp_resyncs);
      add("video_frames", s.video_frames);
      add("audio_frames", s.audio_frames);
      add("keyframes", s.keyframes);
      add("dropped_frames", s.dropped_frames);
      add("demux_resyncs", s.demux_resyncs);
      add("with_keyframe", s.keyframes ? 1 : 0);
    }
    t["ports_consecutive"] = ports_ok;
    t["first_port"] = ports_.empty() ? 0 : ports_.front();
    host().admin_reply(r.reply, 200, t.dump());
  }

 private:
  MediaIngest ing_;
  std::vector<uint16_t> ports_;
};
}  // namespace

JUNCTION_PLUGIN(Bench, "gb-ingest-bench", "1.0.0", "bench only: gb28181 media ingest without SIP", "", 1, 1)
