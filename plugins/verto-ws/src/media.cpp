#include "media.hpp"

#include <junction/media_frame.h>
#include <junction/util/addr.hpp>

#include <cstdlib>
#include <cstring>
#include <map>

namespace verto {

using junction::sdk::to_jn;

bool bridgeable(const std::string& n) { return n == "OPUS" || n == "PCMA" || n == "PCMU" || n == "H264" || n == "VP8"; }


MediaLeg::MediaLeg(const junction::sdk::Host& host, const wrtc::Certificate& cert, uint64_t id, std::string prefix, Events ev)
    : host_(host), cert_(cert), id_(id), ev_(std::move(ev)), audio_name_(prefix + JN_MEDIA_AUDIO_SUFFIX),
      video_name_(prefix + JN_MEDIA_VIDEO_SUFFIX) {}

// No host service here: a leg is destroyed with the plugin instance (on_destroy, where services
// that close resources are not allowed; after a hot reload the next instance closes them from
// save()), or after close().
MediaLeg::~MediaLeg() {
  closed_ = true;  // the PeerConnection's last datagrams (close_notify) go nowhere
  pc_.reset();
  drop_queued();  // no loop drains the ring any more (the instance is going): its frames back to the pool
}

bool MediaLeg::open(const MediaConf& conf, std::string& why) {
  conf_ = conf;
  if (!wrtc::ice_random_credentials(ice_)) {
    why = "no randomness for ICE credentials";
    return false;
  }
  jn_handle out[2] = {0, 0};
  uint32_t port = 0;
  jn_status st = host_.port_bind_udp(conf.port_range, conf.ip, false, id_, out, &port, conf.loop);
  if (st == JN_ERR_NOT_FOUND) {  // no such range in the core's conf: any free port
    st = host_.udp_bind(conf.ip.find(':') != std::string::npos ? "[" + conf.ip + "]:0" : conf.ip + ":0", id_, &out[0], 0, conf.loop);
    jn_addr a{};
    if (st == JN_OK && host_.api()->udp_local_addr(host_.ctx(), out[0], &a) == JN_OK) port = a.port;
  }
  if (st != JN_OK || !port) {
    why = "no UDP port for media (status " + std::to_string(st) + ")";
    return false;
  }
  sock_ = out[0];
  port_ = static_cast<uint16_t>(port);
  if (host_.bus_intern(audio_name_, &audio_id_) != JN_OK || host_.bus_intern(video_name_, &video_id_) != JN_OK) {
    why = "bus streams not available";
    return false;
  }
  return true;
}

wrtc::LocalTransport MediaLeg::local_transport() const {
  wrtc::LocalTransport t;
  t.ice_ufrag = ice_.ufrag;
  t.ice_pwd = ice_.pwd;
  t.fingerprint = cert_.fingerprint();
  t.address = conf_.ip;
  t.port = port_;
  t.candidates = {wrtc::candidate_line("1", conf_.ip, port_)};
  return t;
}

// Our answer to a browser's offer (the first one and updateMedia's): one BUNDLE transport, only
// what the bridges carry.
bool MediaLeg::build_answer(const wrtc::Description& offer, const wrtc::LocalMedia& audio, const wrtc::LocalMedia& video,
                            wrtc::AnswerResult& ans, std::string& why) const {
  if (offer.bundle_mids.empty()) {
    why = "the offer has no BUNDLE group (one transport per m-line is not supported yet)";
    return false;
  }
  wrtc::AnswerOptions o;
  o.audio = audio;
  o.video = video;
  o.transports = {local_transport()};
  o.cname = "junction";
  o.data_channels = data_channels();
  wrtc::ParseError err;
  if (!wrtc::build_answer(offer, o, ans, err)) {
    why = err.reason + " (" + ans.summary() + ")";
    return false;
  }
  return true;
}

bool MediaLeg::answer(const wrtc::Description& offer, const wrtc::LocalMedia& audio, const wrtc::LocalMedia& video, std::string& sdp,
                      std::string& why) {
  wrtc::AnswerResult ans;
  if (!build_answer(offer, audio, video, ans, why) || !start(ans, why)) return false;
  ctl_negotiated_ = negotiated_;  // before the hand-off: the control loop's copy
  sdp = negotiated_.sdp;
  return true;
}

bool MediaLeg::offer(const wrtc::LocalMedia& audio, const wrtc::LocalMedia& video, std::string& sdp, std::string& why) {
  wrtc::OfferOptions o;
  for (auto* lm : {&audio, &video}) {
    // build_offer leaves out what the bridges cannot carry, but refuses a line with nothing left:
    // such a line is not offered at all, as before.
    bool any = false;
    for (auto& c : lm->codecs) any = any || bridgeable(wrtc::canonical_codec_name(c.name));
    if (!any) continue;
    wrtc::OfferOptions::Line l;
    l.kind = lm == &audio ? JN_MEDIA_AUDIO : JN_MEDIA_VIDEO;
    l.codecs = lm->codecs;
    l.direction = lm->can_send ? JN_DIR_SENDRECV : JN_DIR_RECVONLY;
    o.lines.push_back(std::move(l));
  }
  if (o.lines.empty()) {
    why = "nothing the browser could take: no Opus, G.711, H.264 or VP8 on the far side";
    return false;
  }
  o.transport = local_transport();
  o.data_channels = data_channels();
  wrtc::OfferResult r;
  wrtc::ParseError err;
  if (!wrtc::build_offer(o, r, err)) {
    why = err.reason;
    return false;
  }
  sdp = std::move(r.sdp);  // build_offer numbers payload types across the BUNDLE group
  if (!wrtc::parse_description(sdp, our_offer_, err)) {
    why = "our offer does not parse: " + err.reason;
    return false;
  }
  return true;
}

bool MediaLeg::apply(const std::string& answer_sdp, std::string& why) {
  wrtc::AnswerResult ans;
  wrtc::ParseError err;
  if (!wrtc::apply_answer(our_offer_, answer_sdp, ans, err)) {
    why = err.reason;
    return false;
  }
  if (!start(ans, why)) return false;
  ctl_negotiated_ = negotiated_;  // before the hand-off: the control loop's copy
  return true;
}

bool MediaLeg::update(const wrtc::Description& offer, std::string& sdp, bool& new_transport, std::string& why) {
  new_transport = false;
  owner_.check();
  if (!pc_ || closed_) {
    why = "no running media to update";
    return false;
  }
  wrtc::AnswerResult ans;
  if (!build_answer(offer, far_audio_media, far_video_media, ans, why)) return false;
  std::string in_place;
  if (pc_->renegotiate(ans, in_place)) {
    negotiated_ = ans;
    summary_ = negotiated_.summary();
    sdp = negotiated_.sdp;
    return true;
  }
  if (!pc_->ok()) {  // the lines could not be rebuilt: the old ones are gone
    why = in_place;
    return false;
  }
  // Another DTLS peer: a new PeerConnection with fresh ICE credentials on the same socket.
  wrtc::IceCredentials fresh;
  if (!wrtc::ice_random_credentials(fresh)) {
    why = "no randomness for ICE credentials";
    return false;
  }
  wrtc::IceCredentials old = ice_;
  ice_ = fresh;
  wrtc::AnswerResult ans2;  // the same answer, on the fresh credentials
  if (!build_answer(offer, far_audio_media, far_video_media, ans2, why)) {
    ice_ = old;
    return false;
  }
  pc_->close();
  auto prev = std::move(pc_);
  if (!start(ans2, why)) {
    ice_ = old;
    return false;
  }
  new_transport = true;
  sdp = negotiated_.sdp;
  return true;
}

void MediaLeg::hold(bool on) {
  owner_.check();
  if (held_ == on) return;
  held_ = on;
  if (on || !pc_ || closed_) return;
  if (ev_.keyframe && !far_video_.empty()) ev_.keyframe(far_video_, "join");  // the far leg's, for the browser
}

bool MediaLeg::start(const wrtc::AnswerResult& negotiated, std::string& why) {
  owner_.check();
  negotiated_ = negotiated;
  summary_ = negotiated_.summary();
  wrtc::PeerConfig cfg;
  cfg.local_ice = {ice_};
  if (data_channels()) cfg.sctp = conf_.sctp;
  pc_ = std::make_unique<wrtc::PeerConnection>(cert_, *this, negotiated_, cfg);
  if (!pc_->ok()) {
    why = pc_->error();
    pc_.reset();
    return false;
  }
  return true;
}

void MediaLeg::to_core(wrtc::MediaStreams& out) const { wrtc::to_media_streams(ctl_negotiated_, out, &audio_name_, &video_name_); }

void MediaLeg::subscribe(const std::string& audio_stream, const std::string& video_stream) {
  far_audio_ = audio_stream;
  far_video_ = video_stream;
  if (!audio_stream.empty() && !sub_audio_) host_.bus_subscribe(audio_stream, id_ * 4 + JN_MEDIA_AUDIO, &sub_audio_);
  if (!video_stream.empty() && !sub_video_) host_.bus_subscribe(video_stream, id_ * 4 + JN_MEDIA_VIDEO, &sub_video_);
}

void MediaLeg::on_udp(const jn_datagram* d, size_t n, uint64_t now_ms) {
  owner_.check();
  if (!pc_ || closed_) return;
  for (size_t i = 0; i < n; ++i) {
    jn_buf* b = d[i].buf;
    pc_->handle_datagram(0, b->data, b->len, b->src, now_ms);
    if (closed_) return;
  }
}

// Control loop (the ring's one producer).
bool MediaLeg::push(uint32_t kind, jn_buf* buf) {
  host_.buf_ref(buf);
  if (!q_.push({kind, buf})) {  // the loop is far behind: this frame is lost, not the loop's time
    host_.buf_unref(buf);
    q_dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  return !q_woken_.exchange(true);
}

bool MediaLeg::want_keyframe() {
  kf_wanted_.store(true);
  return !q_woken_.exchange(true);
}

void MediaLeg::open_channel(const wrtc::DcepOpen& info) {
  owner_.check();
  if (!pc_ || closed_ || !pc_->sctp()) return;
  for (auto& [st, label] : channels_)
    if (label == info.label) return;  // open already
  if (pc_->sctp()->state() != wrtc::SctpState::Connected) {
    pending_opens_.push_back(info);  // opened by tick() once the association is up
    return;
  }
  if (pc_->open_channel(info) < 0) ++dc_dropped_;
}

bool MediaLeg::send_channel(const std::string& label, const std::string& data, bool binary) {
  owner_.check();
  if (pc_ && !closed_)
    for (auto& [st, l] : channels_)
      if (l == label && pc_->send_channel(st, reinterpret_cast<const uint8_t*>(data.data()), data.size(), binary)) {
        ++dc_out_;
        return true;
      }
  ++dc_dropped_;
  return false;
}

void MediaLeg::on_channel_open(uint16_t stream, const wrtc::DcepOpen& info, bool remote) {
  channels_[stream] = info.label;
  if (remote && ev_.channel_open) ev_.channel_open(info);
}

void MediaLeg::on_channel_message(uint16_t stream, const uint8_t* data, size_t len, bool binary) {
  auto it = channels_.find(stream);
  if (it == channels_.end()) return;
  ++dc_in_;
  if (ev_.channel_message) ev_.channel_message(it->second, data, len, binary);
}

void MediaLeg::on_channel_closed(uint16_t stream) { channels_.erase(stream); }

// The leg's loop (the ring's one consumer). q_woken_ goes back to false only with the ring seen
// empty afterwards, so a push that found it true is always drained by this call or the next.
void MediaLeg::drain(uint64_t now_ms) {
  owner_.check();
  for (;;) {
    if (kf_wanted_.exchange(false) && pc_ && !closed_) pc_->request_keyframe(now_ms);
    Queued item;
    while (q_.pop(item)) {
      on_bus(item.kind, item.buf, now_ms);
      host_.buf_unref(item.buf);
    }
    q_woken_.store(false);
    if (q_.empty() && !kf_wanted_.load()) return;
    if (q_woken_.exchange(true)) return;  // a push posted another drain meanwhile
  }
}

void MediaLeg::drop_queued() {
  Queued item;
  while (q_.pop(item)) host_.buf_unref(item.buf);
  q_woken_.store(false);
}

void MediaLeg::on_bus(uint32_t kind, jn_buf* buf, uint64_t now_ms) {
  owner_.check();
  if (!pc_ || closed_) return;
  junction::media::FrameView f = junction::media::frame_of(buf);
  if (!f.data) return;
  ++bus_frames_;
  if (held_) {
    ++held_out_;
    return;
  }
  pc_->send_frame(kind, f, now_ms);
}

void MediaLeg::tick(uint64_t now_ms) {
  owner_.check();
  if (pc_ && !closed_ && now_ms >= pc_->next_timer_ms()) pc_->tick(now_ms);
  if (!pending_opens_.empty() && pc_ && !closed_ && pc_->sctp() && pc_->sctp()->state() == wrtc::SctpState::Connected) {
    std::vector<wrtc::DcepOpen> todo;
    todo.swap(pending_opens_);
    for (auto& o : todo) open_channel(o);
  }
}


nlohmann::json MediaLeg::stats_json() {
  owner_.check();
  nlohmann::json j = {{"port", port_}, {"negotiated", summary_}, {"publishes", {audio_name_, video_name_}},
                      {"subscribes", {far_audio_, far_video_}}, {"bus_frames_in", bus_frames_}, {"held", held_},
                      {"held_frames_out", held_out_}, {"held_frames_in", held_in_},
                      {"loop", conf_.loop}, {"handoff_dropped", q_dropped_.load(std::memory_order_relaxed)},
                      {"owner_checks", owner_.checks()},
                      {"data_channels", channels_.size()}, {"dc_messages_in", dc_in_}, {"dc_messages_out", dc_out_},
                      {"dc_dropped", dc_dropped_},
                      {"rtp_sent_on_control_loop", control_rtp_.load(std::memory_order_relaxed)}};
  if (!pc_) return j;
  const auto& st = pc_->stats();
  j["state"] = wrtc::peer_state_name(pc_->state());
  j["rtp_in"] = st.rtp_in;
  j["rtp_unknown_pt"] = st.rtp_unknown_pt;
  j["frames_in"] = st.frames_in;
  j["frames_out"] = st.frames_out;
  j["pli_sent"] = st.pli_sent;
  j["pli_fir_in"] = st.pli_fir_in;
  j["nack_in"] = st.nack_in;
  j["retransmitted"] = st.retransmitted;
  j["ice_restarts"] = st.ice_restarts;
  for (uint32_t kind : {uint32_t{JN_MEDIA_AUDIO}, uint32_t{JN_MEDIA_VIDEO}}) {
    std::string k = kind == JN_MEDIA_AUDIO ? "audio" : "video";
    if (const auto* tx = pc_->sender(kind)) {
      const auto& t = tx->stats();
      j[k + "_tx"] = {{"frames", t.frames}, {"packets", t.packets}, {"held_for_keyframe", t.held_for_keyframe},
                      {"wrong_codec", t.wrong_codec}, {"refused", t.refused}, {"send_failed", t.send_failed}};
    }
    if (const auto* rx = pc_->receiver(kind)) {
      const auto& r = rx->stats();
      j[k + "_rx"] = {{"packets", r.packets}, {"frames", r.frames}, {"wrong_pt", r.wrong_pt}, {"bad", r.bad}, {"keyframes", r.keyframes}};
    }
  }
  return j;
}

namespace {
nlohmann::json lm_json(const wrtc::LocalMedia& m) {
  nlohmann::json codecs = nlohmann::json::array();
  for (auto& c : m.codecs) codecs.push_back({c.name, c.clock_rate, c.channels});
  return {{"codecs", codecs}, {"send", m.can_send}, {"receive", m.can_receive}, {"bus", m.bus_stream}};
}
bool lm_from(const nlohmann::json& j, wrtc::LocalMedia& m) {
  if (!j.is_object() || !j.contains("codecs") || !j["codecs"].is_array()) return false;
  try {
    for (auto& c : j["codecs"]) m.codecs.push_back(wrtc::CodecPref{c.at(0).get<std::string>(), c.at(1).get<uint32_t>(), c.at(2).get<uint32_t>()});
    m.can_send = j.value("send", false);
    m.can_receive = j.value("receive", true);
    m.bus_stream = j.value("bus", "");
  } catch (const nlohmann::json::exception&) {
    return false;
  }
  return true;
}
}  // namespace

nlohmann::json MediaLeg::save() const {
  return {{"sock", sock_}, {"subs", {sub_audio_, sub_video_}}, {"ids", {audio_id_, video_id_}},
          {"far_audio", lm_json(far_audio_media)}, {"far_video", lm_json(far_video_media)}};
}

void MediaLeg::close_saved(const junction::sdk::Host& host, const nlohmann::json& j) {
  if (!j.is_object()) return;
  try {
    if (jn_handle s = j.value("sock", jn_handle{0})) host.api()->udp_close(host.ctx(), s);
    for (auto& h : j.value("subs", nlohmann::json::array()))
      if (h.get<jn_handle>()) host.bus_unsubscribe(h.get<jn_handle>());
    for (auto& i : j.value("ids", nlohmann::json::array()))
      if (i.get<uint32_t>()) host.bus_release_id(i.get<uint32_t>());
  } catch (const nlohmann::json::exception&) {
  }
}

bool MediaLeg::far_from_saved(const nlohmann::json& j, wrtc::LocalMedia& audio, wrtc::LocalMedia& video) {
  if (!j.is_object()) return false;
  bool a = lm_from(j.value("far_audio", nlohmann::json()), audio), v = lm_from(j.value("far_video", nlohmann::json()), video);
  return a || v;
}

void MediaLeg::close_pc() {
  owner_.check();
  if (closed_) return;
  if (pc_) pc_->close();
  closed_ = true;
}

void MediaLeg::release() {
  closed_ = true;
  drop_queued();
  if (sub_audio_) host_.bus_unsubscribe(sub_audio_);
  if (sub_video_) host_.bus_unsubscribe(sub_video_);
  if (sock_) host_.api()->udp_close(host_.ctx(), sock_);
  if (audio_id_) host_.bus_release_id(audio_id_);
  if (video_id_) host_.bus_release_id(video_id_);
  sub_audio_ = sub_video_ = sock_ = 0;
  audio_id_ = video_id_ = 0;
}

void MediaLeg::send_datagram(size_t, const uint8_t* data, size_t len, const jn_addr& to) {
  if (closed_ || !sock_) return;
  if (conf_.loop && len && data[0] >= 128 && data[0] <= 191 && std::this_thread::get_id() == conf_.control_thread)
    control_rtp_.fetch_add(1, std::memory_order_relaxed);
  host_.udp_send(sock_, to, std::string_view(reinterpret_cast<const char*>(data), len));
}

void MediaLeg::on_frame(uint32_t kind, const junction::media::FrameView& frame) {
  uint32_t id = kind == JN_MEDIA_VIDEO ? video_id_ : audio_id_;
  if (!id || closed_ || frame.size > UINT32_MAX) return;
  if (held_) {
    ++held_in_;
    return;
  }
  jn_buf* b = host_.buf_alloc(static_cast<uint32_t>(frame.size));
  if (!b) return;
  std::memcpy(b->data, frame.data, frame.size);  // the frame is the bridge's reassembly buffer: one copy into the pool
  b->len = static_cast<uint32_t>(frame.size);
  b->meta = frame.meta;
  b->flags |= JN_BUF_MEDIA;
  host_.bus_publish_id(id, b);
  host_.buf_unref(b);
}

void MediaLeg::on_keyframe_request(uint32_t kind, const char* reason) {
  const std::string& s = far_stream(kind);
  if (s.empty()) return;
  if (ev_.keyframe) ev_.keyframe(s, reason ? reason : "loss");
}

void MediaLeg::on_dtmf(char digit, uint32_t) {
  if (ev_.dtmf) ev_.dtmf(digit);
}

void MediaLeg::on_state(wrtc::PeerState s) {
  if (ev_.state) ev_.state(s);
}

}  // namespace verto
