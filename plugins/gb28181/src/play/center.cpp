#include "play/center.hpp"

#include <junction/abi.h>
#include <junction/proto/sdp.hpp>
#include <junction/sip/builder.hpp>
#include <junction/util/addr.hpp>

namespace gb::play {

namespace sip = junction::sip;
using nlohmann::json;

namespace {
constexpr std::string_view kSdp = "APPLICATION/SDP";
json flow_json(const sip::Flow& f) {
  return {{"proto", f.proto == sip::Proto::Tcp ? "tcp" : "udp"},
          {"peer", junction::util::format_addr(f.peer)},
          {"sock", f.sock},
          {"conn", f.conn}};
}
sip::Flow flow_from(const json& j) {
  sip::Flow f;
  f.proto = j.value("proto", std::string("udp")) == "tcp" ? sip::Proto::Tcp : sip::Proto::Udp;
  junction::util::parse_addr(j.value("peer", std::string()), f.peer);
  f.sock = j.value("sock", jn_handle{0});
  f.conn = j.value("conn", jn_handle{0});
  return f;
}
}  // namespace

const char* session_state_name(SessionState s) {
  switch (s) {
    case SessionState::Inviting: return "inviting";
    case SessionState::Active: return "active";
    case SessionState::Ended: return "ended";
  }
  return "ended";
}

PlayCenter::PlayCenter(sip::Stack& stack, MediaPort& media, PlayLink& link, std::string platform_id, std::string domain,
                       PlayConf conf)
    : stack_(stack),
      media_(media),
      link_(link),
      platform_(std::move(platform_id)),
      domain_(std::move(domain)),
      conf_(std::move(conf)),
      ssrc_(domain_),
      viewers_(conf_.viewers) {}

void PlayCenter::set_conf(const PlayConf& c) {
  conf_ = c;
  viewers_.set_conf(c.viewers);
}

PlaySession* PlayCenter::by_media(uint32_t media) {
  for (auto& [_, s] : sessions_)
    if (s.media == media && s.state != SessionState::Ended) return &s;
  return nullptr;
}
PlaySession* PlayCenter::by_txn(sip::TxnId id) {
  for (auto& [_, s] : sessions_)
    if (s.txn == id) return &s;
  return nullptr;
}
const PlaySession* PlayCenter::find(uint64_t id) const {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : &it->second;
}
uint64_t PlayCenter::live_session(const std::string& channel) const {
  auto it = live_.find(channel);
  return it == live_.end() ? 0 : it->second;
}

uint64_t PlayCenter::start(const StartRequest& r, std::string& error) {
  Transport t = Transport::Udp;
  if (r.transport) {
    t = *r.transport;
  } else if (auto dt = link_.device_transport(r.device)) {
    t = *dt;
  } else if (auto d = transport_from(conf_.transport)) {
    t = *d;
  }
  if ((r.kind == Kind::Playback || r.kind == Kind::Download) && (r.end <= r.start || r.start == 0)) {
    error = "playback/download needs start < end (unix seconds)";
    return 0;
  }
  sip::Flow flow;
  if (!link_.device_flow(r.device, flow, error)) return 0;
  std::string y = ssrc_.allocate(r.kind != Kind::Play);
  if (y.empty()) {
    error = "no free SSRC (9999 streams open)";
    return 0;
  }
  MediaOpened mo = media_.open(r.device, r.channel, t, r.kind, junction::proto::sdp::gb_ssrc_value(y).value_or(0),
                               r.record_path);
  if (!mo.id) {
    ssrc_.release(y);
    error = "media: " + mo.error;
    return 0;
  }
  std::string ip = mo.ip;
  if (ip.empty() || ip == "0.0.0.0" || ip == "::") ip = conf_.media_ip.empty() ? stack_.config().host : conf_.media_ip;

  PlaySession s;
  s.id = next_id_++;
  s.kind = r.kind;
  s.transport = t;
  s.device = r.device;
  s.channel = r.channel;
  s.ssrc = y;
  s.media = mo.id;
  s.stream = mo.stream;
  s.local_port = mo.port;
  s.local_ip = ip;
  s.start = r.start;
  s.end = r.end;
  s.download_speed = r.kind == Kind::Download ? (r.download_speed ? r.download_speed : conf_.download_speed) : 0;
  s.record_path = r.record_path;
  s.created_ms = link_.now_ms();
  s.flow = flow;

  Offer o;
  o.kind = r.kind;
  o.transport = t;
  o.origin_user = platform_;
  o.address = ip;
  o.port = mo.port;
  o.ssrc = y;
  o.channel = r.channel;
  o.start = r.start;
  o.end = r.end;
  o.download_speed = s.download_speed;
  std::string sdp = build_offer(o);

  std::string out;
  sip::Writer w(out);
  // To the device where its requests come from (NAT), the channel in the Request-URI.
  w.request_line("INVITE", "sip:" + r.channel + "@" + junction::util::format_addr(flow.peer));
  stack_.write_via(w, flow.proto, stack_.new_branch());
  w.header("Max-Forwards", 70);
  w.header("From", "<sip:" + platform_ + "@" + domain_ + ">;tag=" + stack_.new_tag());
  w.header("To", "<sip:" + r.channel + "@" + domain_ + ">");
  w.header("Call-ID", stack_.new_call_id());
  w.header("CSeq", "1 INVITE");
  w.header("Contact", stack_.contact(flow.proto, platform_));
  // Subject: media sender ID:its stream number, receiver ID:its stream number (the document's form).
  w.header("Subject", r.channel + ":" + y + "," + platform_ + ":0");
  w.finish(sdp, kSdp);
  s.invite = out;
  s.txn = stack_.send_request(out, flow);
  if (!s.txn) {
    media_.close(mo.id, "INVITE not sent");
    ssrc_.release(y);
    error = "the INVITE could not be sent";
    return 0;
  }
  link_.count_event("gb_invites_total");
  link_.log(JN_LOG_INFO, "gb28181: INVITE " + std::string(kind_name(r.kind)) + " " + r.channel + " of " + r.device + " (" +
                             std::string(transport_name(t)) + ", y=" + y + ", port " + std::to_string(mo.port) + ")");
  uint64_t id = s.id;
  sessions_.emplace(id, std::move(s));
  return id;
}

void PlayCenter::end(PlaySession& s, const std::string& reason, bool send_bye) {
  if (s.state == SessionState::Ended) return;
  if (!s.has_dialog && s.txn) {
    stack_.cancel(s.txn);  // the final answer (487, or a 2xx that crossed: ACK + BYE) still comes
  } else if (send_bye && s.has_dialog) {
    std::string bye = s.dialog.request(stack_, "BYE");
    if (sip::TxnId t = stack_.send_request(bye, s.dialog.flow)) bye_txn_[t] = s.id;
  }
  if (s.media) media_.close(s.media, reason);
  ssrc_.release(s.ssrc);
  if (auto it = live_.find(s.channel); it != live_.end() && it->second == s.id) live_.erase(it);
  s.state = SessionState::Ended;
  s.end_reason = reason;
  link_.count_event("gb_sessions_ended_total");
  link_.log(JN_LOG_INFO, "gb28181: " + std::string(kind_name(s.kind)) + " " + s.channel + " of " + s.device + " ended: " + reason);
  link_.session_changed(s.id, view_of(s));
}

// Ended sessions go once nothing may still arrive for them (an INVITE in flight waits for its answer).
void PlayCenter::sweep_ended() {
  std::erase_if(sessions_, [](const auto& kv) {
    const PlaySession& s = kv.second;
    return s.state == SessionState::Ended && (s.has_dialog || !s.txn);
  });
}

bool PlayCenter::stop(uint64_t id, const std::string& reason) {
  auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second.state == SessionState::Ended) return false;
  PlaySession& s = it->second;
  std::string ch = s.channel;
  bool live = s.kind == Kind::Play && live_session(ch) == id;
  end(s, reason, true);
  if (live) run(viewers_.device_bye(ch));  // an operator stop ends the stream for every viewer
  sweep_ended();
  rearm();
  return true;
}

void PlayCenter::stop_all(const std::string& reason) {
  std::vector<uint64_t> ids;
  for (auto& [id, s] : sessions_) ids.push_back(id);
  for (uint64_t id : ids) {
    auto it = sessions_.find(id);
    if (it != sessions_.end()) end(it->second, reason, true);
  }
  viewers_ = Viewers(conf_.viewers);
  live_.clear();
  channel_dev_.clear();
  channel_tr_.clear();
  sweep_ended();
  rearm();
}

uint64_t PlayCenter::start_live(const std::string& device, const std::string& channel, std::string& error) {
  StartRequest r;
  r.kind = Kind::Play;
  r.device = device;
  r.channel = channel;
  if (auto t = channel_tr_.find(channel); t != channel_tr_.end()) r.transport = t->second;
  uint64_t id = start(r, error);
  if (id) live_[channel] = id;
  return id;
}

void PlayCenter::run(const std::vector<Action>& actions) {
  for (const Action& a : actions) {
    switch (a.type) {
      case ActionType::Start: {
        std::string err;
        auto dev = channel_dev_.find(a.channel);
        if (dev == channel_dev_.end() || !start_live(dev->second, a.channel, err)) {
          link_.log(JN_LOG_WARN, "gb28181: live " + a.channel + " (" + a.reason + ") not started: " + err);
          run(viewers_.start_failed(a.channel, err, link_.now_ms()));
        }
        break;
      }
      case ActionType::Stop:
        if (uint64_t id = live_session(a.channel)) end(sessions_.at(id), a.reason, true);
        break;
      case ActionType::RequestKeyframe:
        if (auto dev = channel_dev_.find(a.channel); dev != channel_dev_.end()) link_.request_keyframe(dev->second, a.channel);
        break;
      case ActionType::EndViewers:
        link_.end_viewers(a.viewers, a.reason);
        break;
    }
  }
  // A channel with neither viewers nor a stream forgets its device (a fresh view records it again).
  for (const Action& a : actions)
    if (!viewers_.find(a.channel) && !live_session(a.channel)) {
      channel_dev_.erase(a.channel);
      channel_tr_.erase(a.channel);
    }
}

bool PlayCenter::view(const std::string& device, const std::string& channel, const std::string& viewer, std::string& error,
                      std::optional<Transport> transport) {
  if (auto it = channel_dev_.find(channel); it != channel_dev_.end() && it->second != device) {
    error = "channel " + channel + " is streaming from device " + it->second;
    return false;
  }
  bool fresh = viewers_.find(channel) == nullptr;
  channel_dev_[channel] = device;
  if (fresh) {
    if (transport) channel_tr_[channel] = *transport;
    else channel_tr_.erase(channel);
  }
  auto acts = viewers_.join(channel, viewer, link_.now_ms());
  if (fresh && !acts.empty() && acts[0].type == ActionType::Start) {
    // The first viewer learns at once when the device cannot be asked (offline, no port).
    if (!start_live(device, channel, error)) {
      viewers_.device_bye(channel);
      channel_dev_.erase(channel);
      channel_tr_.erase(channel);
      return false;
    }
    acts.erase(acts.begin());
  }
  run(acts);
  sweep_ended();
  rearm();
  return true;
}

void PlayCenter::unview(const std::string& channel, const std::string& viewer) {
  run(viewers_.leave(channel, viewer, link_.now_ms()));
  if (!viewers_.find(channel)) {
    // left during a backoff: nothing runs
    if (!live_session(channel)) {
      channel_dev_.erase(channel);
      channel_tr_.erase(channel);
    }
  }
  sweep_ended();
  rearm();
}

bool PlayCenter::control(uint64_t id, const RtspRequest& req, std::string& error) {
  auto it = sessions_.find(id);
  if (it == sessions_.end() || it->second.state != SessionState::Active || !it->second.has_dialog) {
    error = "no established session " + std::to_string(id);
    return false;
  }
  PlaySession& s = it->second;
  if (s.kind != Kind::Playback && s.kind != Kind::Download) {
    error = "MANSRTSP controls playback/download sessions only";
    return false;
  }
  RtspRequest r = req;
  r.cseq = s.rtsp_cseq + 1;
  auto body = build_rtsp(r, error);
  if (!body) return false;
  std::string info = s.dialog.request(stack_, "INFO", {}, *body, kMansrtspType);
  sip::TxnId t = stack_.send_request(info, s.dialog.flow);
  if (!t) {
    error = "the INFO could not be sent";
    return false;
  }
  bye_txn_[t] = s.id;
  s.rtsp_cseq = r.cseq;
  switch (r.method) {
    case RtspMethod::Play:
      s.paused = false;
      if (r.scale) s.scale = *r.scale;
      break;
    case RtspMethod::Pause:
      s.paused = true;  // the RTP timeout is not acted on while paused
      break;
    case RtspMethod::Teardown:
      end(s, "TEARDOWN", true);
      sweep_ended();
      break;
  }
  return true;
}

bool PlayCenter::on_response(sip::TxnId id, int status, const sip::Message* m) {
  if (auto b = bye_txn_.find(id); b != bye_txn_.end()) {
    if (status >= 200) {
      if (status >= 300) link_.log(JN_LOG_WARN, "gb28181: in-dialog request of session " + std::to_string(b->second) + " answered " + std::to_string(status));
      bye_txn_.erase(b);
    }
    return true;
  }
  PlaySession* sp = by_txn(id);
  if (!sp) return false;
  PlaySession& s = *sp;
  if (status < 200) return true;
  uint64_t now = link_.now_ms();
  if (status >= 300 || !m) {
    s.txn = 0;
    std::string why = "INVITE answered " + std::to_string(status) + (m ? " " + std::string(m->reason()).substr(0, 64) : std::string(" (no answer)"));
    bool was_inviting = s.state == SessionState::Inviting;
    std::string ch = s.channel;
    bool live = s.kind == Kind::Play && live_session(ch) == s.id;
    end(s, why, false);
    if (was_inviting) link_.count_event("gb_invite_failures_total");
    if (was_inviting && live) run(viewers_.start_failed(ch, why, now));
    sweep_ended();
    rearm();
    return true;
  }
  // 2xx (each retransmission is ACKed again)
  if (s.has_dialog) {
    if (s.state == SessionState::Active) stack_.send_stateless(s.dialog.ack(stack_, 1), s.dialog.flow);
    return true;
  }
  std::string err;
  if (!sip::Dialog::from_response(s.invite, *m, s.flow, stack_.contact(s.flow.proto, platform_), s.dialog, &err)) {
    // Without a dialog there is no way to ACK or BYE: give up the stream, the device times out.
    link_.log(JN_LOG_WARN, "gb28181: 2xx to INVITE of " + s.channel + " unusable: " + err);
    s.txn = 0;
    end(s, "2xx without a usable dialog: " + err, false);
    sweep_ended();
    return true;
  }
  s.has_dialog = true;
  s.dialog.confirm();
  stack_.send_stateless(s.dialog.ack(stack_, 1), s.dialog.flow);
  if (s.state == SessionState::Ended) {  // stopped while inviting and the CANCEL lost the race
    std::string bye = s.dialog.request(stack_, "BYE");
    if (sip::TxnId t = stack_.send_request(bye, s.dialog.flow)) bye_txn_[t] = s.id;
    sweep_ended();
    return true;
  }
  Offer o;
  o.kind = s.kind;
  o.transport = s.transport;
  std::string ch = s.channel;
  bool live = s.kind == Kind::Play && live_session(ch) == s.id;
  auto a = parse_answer(m->body(), o, err);
  if (a && !media_.answer(s.media, *a, err)) a.reset();
  if (!a) {
    link_.log(JN_LOG_WARN, "gb28181: answer of " + s.device + " for " + ch + " refused: " + err);
    link_.count_event("gb_bad_answers_total");
    end(s, err, true);
    if (live) run(viewers_.start_failed(ch, err, now));
    sweep_ended();
    rearm();
    return true;
  }
  s.state = SessionState::Active;
  s.answered_ms = now;
  s.answer_ssrc = a->ssrc;
  s.filesize = a->filesize;
  link_.log(JN_LOG_INFO, "gb28181: " + std::string(kind_name(s.kind)) + " " + ch + " established (device " + a->address + ":" +
                             std::to_string(a->port) + ", y=" + (a->ssrc.empty() ? std::string("none") : a->ssrc) + ")");
  link_.session_changed(s.id, view_of(s));
  if (live) run(viewers_.started(ch, now));
  rearm();
  return true;
}

bool PlayCenter::owns(const sip::Message& m) const {
  for (auto& [_, s] : sessions_)
    if (s.has_dialog && s.dialog.call_id == m.call_id() && s.dialog.local_tag == m.to_tag()) return true;
  return false;
}

bool PlayCenter::on_request(sip::TxnId id, const sip::Message& m, const sip::Flow& from) {
  PlaySession* sp = nullptr;
  for (auto& [_, s] : sessions_)
    if (s.has_dialog && s.dialog.call_id == m.call_id() && s.dialog.local_tag == m.to_tag()) sp = &s;
  if (!sp) return false;
  PlaySession& s = *sp;
  std::string_view method = m.method();
  if (method == "ACK") return true;
  if (!s.dialog.on_request(m, from)) {
    stack_.respond(id, 500, "CSeq out of order");
    return true;
  }
  if (method == "BYE") {
    stack_.respond(id, 200);
    std::string ch = s.channel;
    bool live = s.kind == Kind::Play && live_session(ch) == s.id;
    end(s, "device BYE", false);
    if (live) run(viewers_.device_bye(ch));
    sweep_ended();
    rearm();
    return true;
  }
  if (method == "INFO") {  // a device's MANSRTSP answer sent as a request: acknowledged
    stack_.respond(id, 200);
    return true;
  }
  return false;  // MESSAGE in the dialog (MediaStatus): the plugin's body path
}

size_t PlayCenter::media_status(const std::string& device, const std::string& channel, const std::string& notify_type,
                                std::string_view call_id) {
  if (notify_type != "121") return 0;
  std::vector<uint64_t> ids;
  for (auto& [id, s] : sessions_) {
    if (s.state != SessionState::Active || (s.kind != Kind::Playback && s.kind != Kind::Download)) continue;
    if (s.has_dialog && !call_id.empty() && s.dialog.call_id == call_id) ids.push_back(id);
    else if (s.device == device && (s.channel == channel || channel == device)) ids.push_back(id);
  }
  for (uint64_t id : ids) {
    PlaySession& s = sessions_.at(id);
    end(s, s.kind == Kind::Download ? "download complete (MediaStatus 121)" : "file ended (MediaStatus 121)", true);
  }
  sweep_ended();
  return ids.size();
}

void PlayCenter::on_first_keyframe(uint32_t media) {
  if (PlaySession* s = by_media(media)) {
    if (s->kind == Kind::Play) viewers_.first_keyframe(s->channel);
  }
}

void PlayCenter::on_keyframe_wanted(uint32_t media) {
  if (PlaySession* s = by_media(media)) link_.request_keyframe(s->device, s->channel);
}

void PlayCenter::on_media_timeout(uint32_t media, const std::string& detail) {
  PlaySession* s = by_media(media);
  if (!s) return;
  if (s->paused) return;  // a paused playback sends nothing: not a timeout
  link_.count_event("gb_rtp_timeouts_total");
  std::string ch = s->channel;
  if (s->kind == Kind::Play && live_session(ch) == s->id && viewers_.find(ch)) {
    run(viewers_.rtp_timeout(ch, link_.now_ms()));  // Stop (BYE) + restart / end the viewers
    if (PlaySession* still = by_media(media)) end(*still, "RTP timeout: " + detail, true);
  } else {
    end(*s, "RTP timeout: " + detail, true);
  }
  sweep_ended();
  rearm();
}

void PlayCenter::on_media_end(uint32_t media, const std::string& detail) {
  PlaySession* s = by_media(media);
  if (!s) return;
  if (s->kind == Kind::Play) return on_media_timeout(media, "stream ended: " + detail);
  end(*s, "stream ended: " + detail, true);
  sweep_ended();
}

void PlayCenter::on_tick() {
  run(viewers_.tick(link_.now_ms()));
  sweep_ended();
  rearm();
}

void PlayCenter::rearm() { link_.arm_play(viewers_.next_deadline()); }

json PlayCenter::view_of(const PlaySession& s) {
  json j = {{"id", s.id},
            {"kind", kind_name(s.kind)},
            {"state", session_state_name(s.state)},
            {"device", s.device},
            {"channel", s.channel},
            {"transport", transport_name(s.transport)},
            {"ssrc", s.ssrc},
            {"answer_ssrc", s.answer_ssrc},
            {"stream", s.stream},
            {"media_port", s.local_port},
            {"created_ms", s.created_ms}};
  if (s.kind == Kind::Playback || s.kind == Kind::Download) {
    j["start"] = s.start;
    j["end"] = s.end;
    j["paused"] = s.paused;
    j["scale"] = s.scale;
  }
  if (s.kind == Kind::Download) {
    j["download_speed"] = s.download_speed;
    j["file"] = s.record_path;
    if (s.filesize) j["filesize"] = *s.filesize;
  }
  if (s.kind == Kind::Play)
    if (const ChannelStream* c = viewers_.find(s.channel); c && live_session(s.channel) == s.id) {
      j["viewers"] = c->viewers.size();
      j["stream_state"] = state_name(c->state);
    }
  if (!s.end_reason.empty()) j["end_reason"] = s.end_reason;
  if (s.media && s.state != SessionState::Ended) j["media"] = media_.stats(s.media);
  return j;
}

json PlayCenter::to_json() const {
  json ss = json::array();
  for (auto& [id, s] : sessions_) {
    if (s.state == SessionState::Ended) continue;
    json j = {{"id", id},
              {"kind", kind_name(s.kind)},
              {"transport", transport_name(s.transport)},
              {"state", session_state_name(s.state)},
              {"device", s.device},
              {"channel", s.channel},
              {"ssrc", s.ssrc},
              {"answer_ssrc", s.answer_ssrc},
              {"media", s.media},
              {"stream", s.stream},
              {"port", s.local_port},
              {"ip", s.local_ip},
              {"start", s.start},
              {"end", s.end},
              {"speed", s.download_speed},
              {"file", s.record_path},
              {"created_ms", s.created_ms},
              {"answered_ms", s.answered_ms},
              {"txn", s.txn},
              {"invite", s.invite},
              {"flow", flow_json(s.flow)},
              {"paused", s.paused},
              {"scale", s.scale},
              {"rtsp_cseq", s.rtsp_cseq}};
    if (s.filesize) j["filesize"] = *s.filesize;
    if (s.has_dialog) j["dialog"] = s.dialog.to_json();
    ss.push_back(std::move(j));
  }
  json bye = json::array();
  for (auto& [t, id] : bye_txn_) bye.push_back({t, id});
  json tr = json::object();
  for (auto& [c, t] : channel_tr_) tr[c] = transport_name(t);
  return {{"sessions", ss},       {"live", live_},          {"channel_dev", channel_dev_}, {"channel_transport", tr},
          {"viewers", viewers_.to_json()}, {"next_id", next_id_}, {"bye_txn", bye}};
}

bool PlayCenter::from_json(const json& j, std::string& error) {
  std::map<uint64_t, PlaySession> ss;
  try {
    for (auto& e : j.at("sessions")) {
      PlaySession s;
      s.id = e.at("id").get<uint64_t>();
      auto k = kind_from(e.at("kind").get<std::string>());
      auto t = transport_from(e.at("transport").get<std::string>());
      if (!k || !t) {
        error = "play: bad kind/transport in session " + std::to_string(s.id);
        return false;
      }
      s.kind = *k;
      s.transport = *t;
      s.state = e.at("state").get<std::string>() == "active" ? SessionState::Active : SessionState::Inviting;
      s.device = e.at("device").get<std::string>();
      s.channel = e.at("channel").get<std::string>();
      s.ssrc = e.at("ssrc").get<std::string>();
      s.answer_ssrc = e.value("answer_ssrc", std::string());
      s.media = e.at("media").get<uint32_t>();
      s.stream = e.value("stream", std::string());
      s.local_port = e.value("port", uint16_t{0});
      s.local_ip = e.value("ip", std::string());
      s.start = e.value("start", uint64_t{0});
      s.end = e.value("end", uint64_t{0});
      s.download_speed = e.value("speed", uint32_t{0});
      s.record_path = e.value("file", std::string());
      s.created_ms = e.value("created_ms", uint64_t{0});
      s.answered_ms = e.value("answered_ms", uint64_t{0});
      s.txn = e.value("txn", sip::TxnId{0});
      s.invite = e.value("invite", std::string());
      s.flow = flow_from(e.at("flow"));
      s.paused = e.value("paused", false);
      s.scale = e.value("scale", 1.0);
      s.rtsp_cseq = e.value("rtsp_cseq", uint32_t{0});
      if (e.contains("filesize")) s.filesize = e["filesize"].get<uint64_t>();
      if (e.contains("dialog")) {
        if (!sip::Dialog::from_json(e["dialog"], s.dialog)) {
          error = "play: bad dialog in session " + std::to_string(s.id);
          return false;
        }
        s.has_dialog = true;
      }
      ss[s.id] = std::move(s);
    }
    Viewers v(conf_.viewers);
    if (!v.from_json(j.at("viewers"), error)) return false;
    auto live = j.at("live").get<std::map<std::string, uint64_t>>();
    auto cd = j.at("channel_dev").get<std::map<std::string, std::string>>();
    std::map<sip::TxnId, uint64_t> bye;
    if (j.contains("bye_txn"))
      for (auto& b : j["bye_txn"]) bye[b.at(0).get<sip::TxnId>()] = b.at(1).get<uint64_t>();
    uint64_t next = j.at("next_id").get<uint64_t>();
    std::map<std::string, Transport> tr;
    if (j.contains("channel_transport") && j["channel_transport"].is_object())
      for (auto& [c, v] : j["channel_transport"].items())
        if (auto t = transport_from(v.get<std::string>())) tr[c] = *t;
    channel_tr_ = std::move(tr);
    sessions_ = std::move(ss);
    viewers_ = std::move(v);
    live_ = std::move(live);
    channel_dev_ = std::move(cd);
    bye_txn_ = std::move(bye);
    next_id_ = next;
  } catch (const json::exception& x) {
    error = std::string("play: ") + x.what();
    return false;
  }
  for (auto& [_, s] : sessions_) ssrc_.reserve(s.ssrc);
  rearm();
  return true;
}

}  // namespace gb::play
