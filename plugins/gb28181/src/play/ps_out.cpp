#include "play/ps_out.hpp"

#include <junction/media/frame.hpp>
#include <junction/util/addr.hpp>

namespace gb::play {

namespace media = junction::media;
using nlohmann::json;

namespace {
std::string host_port(const std::string& ip, uint16_t port) {
  return ip.find(':') != std::string::npos ? "[" + ip + "]:" + std::to_string(port) : ip + ":" + std::to_string(port);
}
// Cookie kinds: sockets, bus subscriptions, posts to a sender's loop (subscribe there; end the
// loop-local subscriptions of closed senders, the id is the loop) and to the control loop (the
// loop-local subscription was refused: subscribe there instead).
enum : uint32_t { kSock = 1, kVideo = 2, kAudio = 3, kPostSubscribe = 4, kPostUnsubscribe = 5, kPostControl = 6 };
}  // namespace

struct PsOut::Sink final : media::PsRtpPacketizer::Sink {
  junction::sdk::Host host;
  Out& o;
  Sink(junction::sdk::Host h, Out& out) : host(h), o(out) {}
  void on_packet(const uint8_t* p, size_t n) override {
    jn_status st = JN_ERR_STATE;
    std::string_view bytes(reinterpret_cast<const char*>(p), n);
    if (o.transport == Transport::Udp) {
      if (o.have_to) st = host.udp_send(o.sock, o.to, bytes);
    } else if (o.conn) {
      st = host.tcp_send(o.conn, bytes);  // JN_FRAME_LEN16: the core writes the RFC 4571 length
    }
    if (st == JN_OK) {
      ++o.packets;
      o.bytes += n;
    } else {
      ++o.send_errors;
    }
  }
};

PsOut::PsOut(junction::sdk::Host host, std::string port_range, std::string bind_ip)
    : host_(host), range_(std::move(port_range)), bind_ip_(std::move(bind_ip)) {}

PsOut::Out* PsOut::find(uint32_t id) {
  auto it = outs_.find(id);
  return it == outs_.end() ? nullptr : &it->second;
}

PsOut::Opened PsOut::open(Transport t, uint32_t loop) {
  Opened r;
  uint32_t id;
  {
    std::lock_guard lk(mu_);
    id = next_id_++;
    if (next_id_ == 0 || next_id_ > 0xFFFFFFF0u) next_id_ = 1;
  }
  Out o;
  o.transport = t;
  o.loop = loop;
  uint32_t port = 0;
  jn_status st = JN_OK;
  if (t == Transport::Udp) {
    jn_handle h[2] = {0, 0};
    st = host_.port_bind_udp(range_, bind_ip_, true, cookie(id, kSock), h, &port, loop);
    o.sock = h[0];
    o.rtcp = h[1];
  } else if (t == Transport::TcpPassive) {
    jn_tcp_options opt = junction::sdk::Host::tcp_options(JN_FRAME_LEN16, 0, 65535);
    opt.loop = loop;
    st = host_.port_bind_tcp(range_, bind_ip_, opt, cookie(id, kSock), &o.listener, &port);
  } else {
    port = 9;  // TCP active: we connect; the m= port is the discard placeholder
  }
  if (st != JN_OK) {
    r.error = "no media port free in range " + range_ + " (status " + std::to_string(st) + ")";
    return r;
  }
  o.port = static_cast<uint16_t>(port);
  r.id = id;
  r.port = o.port;
  r.ip = bind_ip_;
  std::lock_guard lk(mu_);
  outs_.emplace(id, std::move(o));
  return r;
}

bool PsOut::start(uint32_t id, const std::string& stream, const std::string& peer_ip, uint16_t peer_port, uint8_t pt,
                  uint32_t ssrc, std::string& error) {
  jn_addr to{};
  Transport transport;
  uint32_t loop;
  {
    std::lock_guard lk(mu_);
    Out* o = find(id);
    if (!o) {
      error = "no such sender";
      return false;
    }
    if (o->started) return true;  // an ACK retransmission
    transport = o->transport;
    loop = o->loop;
  }
  if (transport == Transport::Udp && !junction::util::parse_addr(host_port(peer_ip, peer_port), to)) {
    error = "bad client address " + peer_ip.substr(0, 64);
    return false;
  }
  uint32_t video_id = 0, audio_id = 0;
  bool local = loop != 0 && host_.bus_intern(stream + "/video", &video_id) == JN_OK &&
               host_.bus_intern(stream + "/audio", &audio_id) == JN_OK;
  jn_handle conn = 0;
  if (transport == Transport::TcpActive) {
    // No lock held: the connection's events come on its loop, which may be waiting for mu_.
    jn_tcp_options opt = junction::sdk::Host::tcp_options(JN_FRAME_LEN16, 0, 65535);
    opt.loop = loop;
    jn_status st = host_.tcp_connect(host_port(peer_ip, peer_port), opt, cookie(id, kSock), &conn);
    if (st != JN_OK) {
      error = "connect to the client " + host_port(peer_ip, peer_port) + " failed (status " + std::to_string(st) + ")";
      return false;
    }
  }
  std::lock_guard lk(mu_);
  Out* o = find(id);
  if (!o) {
    if (conn) host_.tcp_close(conn);  // closed meanwhile (tcp_close only queues: no wait under the lock)
    error = "no such sender";
    return false;
  }
  o->stream = stream;
  o->pt = pt;
  o->ssrc = ssrc;
  if (transport == Transport::Udp) {
    o->to = to;
    o->have_to = true;
  }
  if (conn) o->conn = conn;
  o->started = true;
  if (local) {
    // The frames come on the stream's loop: subscribe there (on_post), send from there.
    o->video_id = video_id;
    o->audio_id = audio_id;
    if (host_.post(loop, cookie(id, kPostSubscribe)) == JN_OK) return true;
    host_.warn("gb28181: client media " + stream + ": cannot post to media loop " + std::to_string(loop) +
               ": frames handed over to the control loop");
  }
  if (!subscribe_control(id, *o, error)) {
    o->started = false;
    return false;
  }
  return true;
}

// mu_ held. The control loop's subscriptions (no media loops, or the loop-local one refused).
bool PsOut::subscribe_control(uint32_t id, Out& o, std::string& error) {
  if (host_.bus_subscribe(o.stream + "/video", cookie(id, kVideo), &o.sub_video) != JN_OK ||
      host_.bus_subscribe(o.stream + "/audio", cookie(id, kAudio), &o.sub_audio) != JN_OK) {
    error = "cannot subscribe to " + o.stream;
    return false;
  }
  o.local = false;
  return true;
}

// On the sender's loop (a post from start()).
void PsOut::subscribe_local(uint32_t id) {
  std::lock_guard lk(mu_);
  Out* o = find(id);
  if (!o || o->sub_video || o->sub_audio) return;  // closed meanwhile, or subscribed already
  o->loop_thread = std::this_thread::get_id();
  jn_status sv = host_.bus_subscribe_local(o->video_id, cookie(id, kVideo), &o->sub_video);
  jn_status sa = sv == JN_OK ? host_.bus_subscribe_local(o->audio_id, cookie(id, kAudio), &o->sub_audio) : sv;
  if (sv == JN_OK && sa == JN_OK) {
    o->local = true;
    return;
  }
  if (o->sub_video) host_.bus_unsubscribe_local(o->sub_video);
  o->sub_video = o->sub_audio = 0;
  host_.warn("gb28181: client media " + o->stream + ": loop-local subscription refused (status " +
             std::to_string(sv != JN_OK ? sv : sa) + "): frames handed over to the control loop");
  host_.post(0, cookie(id, kPostControl));
}

void PsOut::close(uint32_t id) {
  Out o;
  {
    std::lock_guard lk(mu_);
    auto it = outs_.find(id);
    if (it == outs_.end()) return;
    o = std::move(it->second);
    outs_.erase(it);
    if (o.local) {
      // A loop-local subscription ends on its own loop; until then its frames find no sender.
      for (jn_handle h : {o.sub_video, o.sub_audio})
        if (h) unsubs_.push_back(Unsub{o.loop, h});
    }
  }
  // No lock held: closing a socket waits for its loop's batch, which may be waiting for mu_.
  if (o.local) {
    host_.post(o.loop, cookie(o.loop, kPostUnsubscribe));
  } else {
    if (o.sub_video) host_.bus_unsubscribe(o.sub_video);
    if (o.sub_audio) host_.bus_unsubscribe(o.sub_audio);
  }
  if (o.sock) host_.api()->udp_close(host_.ctx(), o.sock);
  if (o.rtcp) host_.api()->udp_close(host_.ctx(), o.rtcp);
  if (o.conn) host_.tcp_close(o.conn);
  if (o.listener) host_.tcp_close(o.listener);
}

json PsOut::stats(uint32_t id) const {
  std::lock_guard lk(mu_);
  auto it = outs_.find(id);
  if (it == outs_.end()) return nullptr;
  const Out& o = it->second;
  return {{"transport", std::string(transport_name(o.transport))},
          {"port", o.port},
          {"to", o.have_to ? junction::util::format_addr(o.to) : std::string()},
          {"connected", o.conn != 0},
          {"ssrc", o.ssrc},
          {"started", o.started},
          {"keyframe_seen", o.keyed},
          {"frames", o.frames},
          {"packets", o.packets},
          {"bytes", o.bytes},
          {"skipped_frames", o.skipped},
          {"mux_errors", o.mux_errors},
          {"send_errors", o.send_errors},
          {"loop", o.loop},
          {"loop_local", o.local},
          {"frames_on_loop", o.frames_on_loop},
          {"frames_off_loop", o.frames_off_loop}};
}

void PsOut::send_frame(Out& o, const media::FrameView& f) {
  bool video = f.meta.kind == JN_MEDIA_VIDEO;
  if (!o.keyed) {
    // A client starts at a keyframe (it carries the parameter sets): nothing before it, audio included.
    if (!video || !(f.meta.frame_flags & JN_MF_KEY)) {
      ++o.skipped;
      return;
    }
    o.keyed = true;
  }
  if (video && f.meta.codec != o.video_codec) {
    // The muxer's PSM names the video codec: (re)made when the channel's codec is first known or changes.
    media::PsMuxerConfig mc;
    mc.video_codec = f.meta.codec;
    media::PsRtpPacketizerConfig pc;
    pc.payload_type = o.pt;
    pc.ssrc = o.ssrc;
    pc.first_seq = o.tx ? o.tx->packetizer().next_seq() : o.seq;
    o.tx = std::make_unique<media::PsRtpSender>(mc, pc);
    o.video_codec = f.meta.codec;
  }
  if (!o.tx) return;
  Sink sink(host_, o);
  if (!o.tx->send(f, sink)) {
    ++o.mux_errors;  // e.g. audio of a codec the PSM does not carry
    return;
  }
  ++o.frames;
  // A loop-local subscription delivers on its loop only: after a hot reload the thread is learnt here.
  if (o.local && o.loop_thread == std::thread::id{}) o.loop_thread = std::this_thread::get_id();
  ++(o.local && std::this_thread::get_id() == o.loop_thread ? o.frames_on_loop : o.frames_off_loop);
  o.seq = o.tx->packetizer().next_seq();
}

bool PsOut::on_bus(jn_handle, uint64_t c, jn_buf* buf) {
  if (!owns(c)) return false;
  media::FrameView f = media::frame_of(buf);
  if (!f.data) return true;
  std::lock_guard lk(mu_);
  Out* o = find(static_cast<uint32_t>(c & 0xFFFFFFFFu));
  if (!o || !o->started) return true;
  if (o->transport != Transport::Udp && !o->conn) {
    ++o->skipped;  // TCP: the client has not connected (yet)
    return true;
  }
  send_frame(*o, f);
  return true;
}

bool PsOut::on_post(uint64_t c) {
  if (!owns(c)) return false;
  uint32_t kind = static_cast<uint32_t>((c >> 32) & 0xFFFFu), id = static_cast<uint32_t>(c & 0xFFFFFFFFu);
  if (kind == kPostSubscribe) {
    subscribe_local(id);
  } else if (kind == kPostUnsubscribe) {
    // On loop `id`: end its closed senders' subscriptions (no delivery of them after this).
    std::lock_guard lk(mu_);
    std::erase_if(unsubs_, [&](const Unsub& u) {
      if (u.loop != id) return false;
      host_.bus_unsubscribe_local(u.sub);
      return true;
    });
  } else if (kind == kPostControl) {
    std::lock_guard lk(mu_);
    Out* o = find(id);
    std::string err;
    if (o && !o->sub_video && !subscribe_control(id, *o, err)) host_.warn("gb28181: client media " + o->stream + ": " + err);
  }
  return true;
}

bool PsOut::on_tcp(const jn_tcp_event& ev) {
  if (!owns(ev.cookie)) return false;
  std::lock_guard lk(mu_);
  Out* o = find(static_cast<uint32_t>(ev.cookie & 0xFFFFFFFFu));
  if (!o) {
    if (ev.type == JN_TCP_ACCEPTED || ev.type == JN_TCP_CONNECTED) host_.tcp_close(ev.conn);
    return true;
  }
  switch (ev.type) {
    case JN_TCP_ACCEPTED:
      if (o->conn) {
        host_.info("gb28181: client media: a second connection to port " + std::to_string(o->port) + " refused");
        host_.tcp_close(ev.conn);
        break;
      }
      o->conn = ev.conn;
      o->keyed = false;  // a new receiver starts at a keyframe
      break;
    case JN_TCP_CONNECTED:
      o->keyed = false;
      break;
    case JN_TCP_CLOSED:
      if (ev.conn == o->conn) {
        o->conn = 0;
        host_.info("gb28181: client media: connection on port " + std::to_string(o->port) + " closed");
      }
      break;
    default:
      break;  // the client sends nothing we read (RTCP over TCP is ignored)
  }
  return true;
}

bool PsOut::on_udp(jn_handle, uint64_t c) { return owns(c); }

json PsOut::to_json() const {
  std::lock_guard lk(mu_);
  json a = json::array();
  for (auto& [id, o] : outs_)
    a.push_back({{"id", id},
                 {"transport", std::string(transport_name(o.transport))},
                 {"loop", o.loop},
                 {"local", o.local},
                 {"video_id", o.video_id},
                 {"audio_id", o.audio_id},
                 {"sock", o.sock},
                 {"rtcp", o.rtcp},
                 {"listener", o.listener},
                 {"conn", o.conn},
                 {"sub_video", o.sub_video},
                 {"sub_audio", o.sub_audio},
                 {"port", o.port},
                 {"to", o.have_to ? junction::util::format_addr(o.to) : std::string()},
                 {"started", o.started},
                 {"keyed", o.keyed},
                 {"pt", o.pt},
                 {"ssrc", o.ssrc},
                 {"seq", o.tx ? o.tx->packetizer().next_seq() : o.seq},
                 {"stream", o.stream},
                 {"frames", o.frames},
                 {"packets", o.packets},
                 {"bytes", o.bytes},
                 {"frames_on_loop", o.frames_on_loop},
                 {"frames_off_loop", o.frames_off_loop}});
  json u = json::array();
  for (auto& x : unsubs_) u.push_back({{"loop", x.loop}, {"sub", x.sub}});
  return {{"next_id", next_id_}, {"outs", a}, {"unsubs", u}};
}

void PsOut::from_json(const json& j) {
  std::lock_guard lk(mu_);
  outs_.clear();
  unsubs_.clear();
  if (!j.is_object()) return;
  next_id_ = j.value("next_id", 1u);
  // The old instance's posts come to this one: what they would have ended is here.
  if (j.contains("unsubs") && j["unsubs"].is_array())
    for (auto& e : j["unsubs"])
      if (e.is_object()) unsubs_.push_back(Unsub{e.value("loop", 0u), e.value("sub", jn_handle{0})});
  if (!j.contains("outs") || !j["outs"].is_array()) return;
  for (auto& e : j["outs"]) {
    if (!e.is_object()) continue;
    Out o;
    o.transport = transport_from(e.value("transport", std::string("udp"))).value_or(Transport::Udp);
    o.loop = e.value("loop", 0u);
    o.local = e.value("local", false);
    o.video_id = e.value("video_id", 0u);
    o.audio_id = e.value("audio_id", 0u);
    o.sock = e.value("sock", jn_handle{0});
    o.rtcp = e.value("rtcp", jn_handle{0});
    o.listener = e.value("listener", jn_handle{0});
    o.conn = e.value("conn", jn_handle{0});
    o.sub_video = e.value("sub_video", jn_handle{0});
    o.sub_audio = e.value("sub_audio", jn_handle{0});
    o.port = e.value("port", uint16_t{0});
    std::string to = e.value("to", std::string());
    o.have_to = !to.empty() && junction::util::parse_addr(to, o.to);
    o.started = e.value("started", false);
    // A client already past its first keyframe goes on with the next frame (no frame lost to a
    // reload): the muxer is made again at the next video frame, its PSM first.
    o.keyed = e.value("keyed", false);
    o.pt = e.value("pt", uint8_t{96});
    o.ssrc = e.value("ssrc", uint32_t{0});
    o.seq = e.value("seq", uint16_t{0});
    o.stream = e.value("stream", std::string());
    o.frames = e.value("frames", uint64_t{0});
    o.packets = e.value("packets", uint64_t{0});
    o.bytes = e.value("bytes", uint64_t{0});
    o.frames_on_loop = e.value("frames_on_loop", uint64_t{0});
    o.frames_off_loop = e.value("frames_off_loop", uint64_t{0});
    // The RTP sequence goes on where the old instance left it.
    outs_.emplace(e.value("id", 0u), std::move(o));
  }
}

}  // namespace gb::play
