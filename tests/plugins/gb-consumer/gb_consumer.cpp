// gb-consumer: a test plugin that watches media frames on the bus, for the gb28181 media flow
// tests (plugins/gb28181/tests/test_media_*.py): it subscribes to stream names (a channel's
// "gb28181/<device>/<channel>/video" and ".../audio") and keeps, per subscription, the frames it
// got: counts and a hash per frame (FNV-1a 64 of the payload bytes, 16 hex digits), so a test can
// compare them with the elementary stream it encoded. It can also place a call (e.g. to
// gb:<channel>: a viewer, which is what makes the gb28181 plugin INVITE the device) and end it.
//
// Admin commands (POST /api/v1/plugins/gb-consumer/cmd/VERB, JSON in and out):
//   subscribe {"stream", "catch_up"?} -> {"status", "sub", "catch_up_frames"?}
//                                   catch_up: also subscribes "<stream>/catchup/<sub>" and publishes
//                                   media.keyframe_request {"stream", "reason": "join", "catch_up"}:
//                                   a producer with a GOP cache (gb28181 media.gop_cache) replays it
//                                   there, synchronously; frames of both subscriptions count as one,
//                                   a live frame whose meta.seq was already seen is skipped ("dups").
//   unsubscribe {"sub"}             -> {"status"}
//   frames {"sub", "from"?}         -> {"stream", "frames", "video", "audio", "keyframes", "discont",
//                                       "bytes", "vcodec", "acodec", "hashes": [per frame from
//                                       index "from"], "kinds": "vaav..." (same range)}
//   call {"to", "from"?}            -> {"status", "leg"}   (an OFFER without media: a viewer)
//   end {"leg"}                     -> {"status"}
//   calls                           -> [{"leg", "type", "code", "reason"}]  (everything on_call got)
// Log lines a test waits on: "gb-consumer: first keyframe on STREAM (sub N)",
// "gb-consumer: call LEG answer|reject|end CODE".
// State is not kept over a reload of this plugin (the tests reload gb28181, not this one).
#include <junction/media/frame.hpp>
#include <junction/plugin.hpp>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace {
using junction::sdk::Host;
using junction::sdk::to_jn;
using nlohmann::json;

constexpr size_t kMaxHashes = 200000;  // per subscription: minutes of video and audio

uint64_t fnv1a64(const uint8_t* p, size_t n) {
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

const char* codec_name(uint32_t c) {
  switch (c) {
    case JN_CODEC_H264: return "h264";
    case JN_CODEC_H265: return "h265";
    case JN_CODEC_PCMA: return "pcma";
    case JN_CODEC_PCMU: return "pcmu";
    case JN_CODEC_AAC: return "aac";
  }
  return "none";
}

struct Sub {
  std::string stream;
  uint64_t frames = 0, video = 0, audio = 0, keyframes = 0, discont = 0, bytes = 0, dropped = 0;
  uint32_t vcodec = 0, acodec = 0;
  std::vector<uint64_t> hashes;
  std::string kinds;
  bool dedupe = false;          // catch-up: frames by meta.seq per track, each once
  bool have_seq[2] = {false, false};
  uint32_t last_seq[2] = {0, 0};
  uint64_t dups = 0, catch_up_frames = 0;
  jn_handle catch_up_sub = JN_INVALID_HANDLE;
};

class GbConsumer : public junction::sdk::Plugin {
 public:
  GbConsumer(Host h, const jn_create_args&) : Plugin(h) {}

  void on_bus(jn_handle sub, uint64_t, jn_buf* buf) override {
    if (auto a = alias_.find(sub); a != alias_.end()) sub = a->second;  // a catch-up subscription
    auto it = subs_.find(sub);
    if (it == subs_.end()) return;
    Sub& s = it->second;
    auto f = junction::media::frame_of(buf);
    if (!f.data) return;  // not a media frame
    if (s.dedupe) {
      int k = f.meta.kind == JN_MEDIA_VIDEO ? 0 : 1;
      if (s.have_seq[k] && static_cast<int32_t>(f.meta.seq - s.last_seq[k]) <= 0) {
        ++s.dups;
        return;
      }
      s.have_seq[k] = true;
      s.last_seq[k] = f.meta.seq;
    }
    ++s.frames;
    s.bytes += f.size;
    bool video = f.meta.kind == JN_MEDIA_VIDEO;
    if (video) {
      ++s.video;
      s.vcodec = f.meta.codec;
      if (f.meta.frame_flags & JN_MF_KEY) {
        if (s.keyframes++ == 0) host().log(JN_LOG_INFO, "gb-consumer: first keyframe on " + s.stream + " (sub " + std::to_string(sub) + ")");
      }
    } else {
      ++s.audio;
      s.acodec = f.meta.codec;
    }
    if (f.meta.frame_flags & JN_MF_DISCONT) ++s.discont;
    if (s.hashes.size() < kMaxHashes) {
      s.hashes.push_back(fnv1a64(f.data, f.size));
      s.kinds.push_back(video ? 'v' : 'a');
    } else {
      ++s.dropped;
    }
  }

  void on_call(jn_handle leg, uint64_t, const jn_call_event& ev) override {
    const char* t = ev.type == JN_CALL_ANSWER ? "answer" : ev.type == JN_CALL_REJECT ? "reject" : ev.type == JN_CALL_END ? "end"
                  : ev.type == JN_CALL_RINGING ? "ringing" : ev.type == JN_CALL_OFFER ? "offer" : "other";
    if (ev.type == JN_CALL_OFFER) {  // nobody calls the consumer
      host().call_send(leg, JN_CALL_REJECT, 488, "gb-consumer takes no calls");
      return;
    }
    calls_.push_back({{"leg", leg}, {"type", t}, {"code", ev.code}, {"reason", std::string(junction::sdk::to_sv(ev.reason))}});
    host().log(JN_LOG_INFO, std::string("gb-consumer: call ") + std::to_string(leg) + " " + t + " " + std::to_string(ev.code));
  }

  void on_admin(const jn_admin_request& r) override {
    std::string verb(junction::sdk::to_sv(r.verb));
    json b = json::parse(junction::sdk::to_sv(r.body), nullptr, false);
    if (b.is_discarded() || b.is_null()) b = json::object();
    if (!b.is_object()) return reply(r, 400, {{"error", "body: a JSON object"}});
    try {
      if (verb == "subscribe") {
        std::string stream = b.at("stream").get<std::string>();
        jn_handle h = JN_INVALID_HANDLE;
        jn_status st = host().bus_subscribe(stream, 0, &h);
        if (st == JN_OK) subs_[h].stream = stream;
        host().log(JN_LOG_INFO, "gb-consumer: subscribed " + stream + " sub=" + std::to_string(h) + " status=" + std::to_string(st));
        if (st != JN_OK || !b.value("catch_up", false)) return reply(r, 200, {{"status", st}, {"sub", h}});
        std::string cu = stream + "/catchup/" + std::to_string(h);
        jn_handle h2 = JN_INVALID_HANDLE;
        if (host().bus_subscribe(cu, 0, &h2) != JN_OK) return reply(r, 200, {{"status", JN_ERR_INVALID}, {"sub", h}});
        alias_[h2] = h;
        subs_[h].dedupe = true;
        subs_[h].catch_up_sub = h2;
        uint64_t before = subs_[h].frames;
        json ev = {{"stream", stream}, {"reason", "join"}, {"catch_up", cu}};
        host().event_publish(JN_MEDIA_KEYFRAME_REQUEST_TOPIC, ev.dump());  // the replay is synchronous
        Sub& s = subs_[h];
        s.catch_up_frames = s.frames - before;
        host().log(JN_LOG_INFO, "gb-consumer: catch-up " + std::to_string(s.catch_up_frames) + " frames on " + stream +
                                    " (sub " + std::to_string(h) + ")");
        return reply(r, 200, {{"status", st}, {"sub", h}, {"catch_up_frames", s.catch_up_frames}});
      }
      if (verb == "unsubscribe") {
        jn_handle h = b.at("sub").get<uint64_t>();
        jn_status st = subs_.count(h) ? host().bus_unsubscribe(h) : JN_ERR_NOT_FOUND;
        if (st == JN_OK && subs_[h].catch_up_sub != JN_INVALID_HANDLE) {
          host().bus_unsubscribe(subs_[h].catch_up_sub);
          alias_.erase(subs_[h].catch_up_sub);
        }
        return reply(r, 200, {{"status", st}});
      }
      if (verb == "frames") {
        auto it = subs_.find(b.at("sub").get<uint64_t>());
        if (it == subs_.end()) return reply(r, 404, {{"error", "no such subscription"}});
        const Sub& s = it->second;
        size_t from = std::min<size_t>(b.value("from", size_t{0}), s.hashes.size());
        json hashes = json::array();
        char hex[17];
        for (size_t i = from; i < s.hashes.size(); ++i) {
          std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(s.hashes[i]));
          hashes.push_back(hex);
        }
        return reply(r, 200, {{"stream", s.stream}, {"frames", s.frames}, {"video", s.video}, {"audio", s.audio},
                              {"keyframes", s.keyframes}, {"discont", s.discont}, {"bytes", s.bytes},
                              {"dropped", s.dropped}, {"dups", s.dups}, {"catch_up_frames", s.catch_up_frames},
                              {"vcodec", codec_name(s.vcodec)}, {"acodec", codec_name(s.acodec)},
                              {"hashes", hashes}, {"kinds", s.kinds.substr(from)}});
      }
      if (verb == "call") {
        std::string to = b.at("to").get<std::string>();
        std::string from = b.value("from", std::string("gb-consumer:viewer"));
        jn_call_event ev = Host::event(JN_CALL_OFFER);
        ev.from = to_jn(from);
        ev.to = to_jn(to);
        jn_handle leg = JN_INVALID_HANDLE;
        jn_status st = host().call_originate(ev, 1, &leg);
        return reply(r, 200, {{"status", st}, {"leg", leg}});
      }
      if (verb == "end") {
        return reply(r, 200, {{"status", host().call_send(b.at("leg").get<uint64_t>(), JN_CALL_END)}});
      }
      if (verb == "calls") return reply(r, 200, calls_);
    } catch (const json::exception& e) {
      return reply(r, 400, {{"error", std::string("bad body: ") + e.what()}});
    }
    reply(r, 404, {{"error", "unknown command '" + verb + "' (subscribe, unsubscribe, frames, call, end, calls)"}});
  }

 private:
  void reply(const jn_admin_request& r, int code, const json& j) { host().admin_reply(r.reply, code, j.dump()); }

  std::map<jn_handle, Sub> subs_;
  std::map<jn_handle, jn_handle> alias_;  // catch-up subscription -> its Sub's handle
  json calls_ = json::array();
};

}  // namespace

JUNCTION_PLUGIN(GbConsumer, "gb-consumer", "1.0.0", "test plugin: counts and hashes a stream's frames on the bus", "", 1, 1)
