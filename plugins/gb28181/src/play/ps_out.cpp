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
enum : uint32_t { kSock = 1, kVideo = 2, kAudio = 3 };
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

PsOut::Opened PsOut::open(Transport t) {
  Opened r;
  uint32_t id = next_id_++;
  if (next_id_ == 0 || next_id_ > 0xFFFFFFF0u) next_id_ = 1;
  Out o;
  o.transport = t;
  uint32_t port = 0;
  jn_status st = JN_OK;
  if (t == Transport::Udp) {
    jn_handle h[2] = {0, 0};
    st = host_.port_bind_udp(range_, bind_ip_, true, cookie(id, kSock), h, &port);
    o.sock = h[0];
    o.rtcp = h[1];
  } else if (t == Transport::TcpPassive) {
    jn_tcp_options opt = junction::sdk::Host::tcp_options(JN_FRAME_LEN16, 0, 65535);
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
  outs_.emplace(id, std::move(o));
  return r;
}

bool PsOut::start(uint32_t id, const std::string& stream, const std::string& peer_ip, uint16_t peer_port, uint8_t pt,
                  uint32_t ssrc, std::string& error) {
  Out* o = find(id);
  if (!o) {
    error = "no such sender";
    return false;
  }
  if (o->started) return true;  // an ACK retransmission
  o->stream = stream;
  o->pt = pt;
  o->ssrc = ssrc;
  if (o->transport == Transport::Udp) {
    if (!junction::util::parse_addr(host_port(peer_ip, peer_port), o->to)) {
      error = "bad client address " + peer_ip.substr(0, 64);
      return false;
    }
    o->have_to = true;
  } else if (o->transport == Transport::TcpActive) {
    jn_tcp_options opt = junction::sdk::Host::tcp_options(JN_FRAME_LEN16, 0, 65535);
    jn_status st = host_.tcp_connect(host_port(peer_ip, peer_port), opt, cookie(id, kSock), &o->conn);
    if (st != JN_OK) {
      error = "connect to the client " + host_port(peer_ip, peer_port) + " failed (status " + std::to_string(st) + ")";
      return false;
    }
  }
  if (host_.bus_subscribe(stream + "/video", cookie(id, kVideo), &o->sub_video) != JN_OK ||
      host_.bus_subscribe(stream + "/audio", cookie(id, kAudio), &o->sub_audio) != JN_OK) {
    error = "cannot subscribe to " + stream;
    return false;
  }
  o->started = true;
  return true;
}

void PsOut::close(uint32_t id) {
  Out* o = find(id);
  if (!o) return;
  if (o->sub_video) host_.bus_unsubscribe(o->sub_video);
  if (o->sub_audio) host_.bus_unsubscribe(o->sub_audio);
  if (o->sock) host_.api()->udp_close(host_.ctx(), o->sock);
  if (o->rtcp) host_.api()->udp_close(host_.ctx(), o->rtcp);
  if (o->conn) host_.tcp_close(o->conn);
  if (o->listener) host_.tcp_close(o->listener);
  outs_.erase(id);
}

json PsOut::stats(uint32_t id) const {
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
          {"send_errors", o.send_errors}};
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
  o.seq = o.tx->packetizer().next_seq();
}

bool PsOut::on_bus(jn_handle, uint64_t c, jn_buf* buf) {
  if (!owns(c)) return false;
  Out* o = find(static_cast<uint32_t>(c & 0xFFFFFFFFu));
  if (!o || !o->started) return true;
  media::FrameView f = media::frame_of(buf);
  if (!f.data) return true;
  if (o->transport != Transport::Udp && !o->conn) {
    ++o->skipped;  // TCP: the client has not connected (yet)
    return true;
  }
  send_frame(*o, f);
  return true;
}

bool PsOut::on_tcp(const jn_tcp_event& ev) {
  if (!owns(ev.cookie)) return false;
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
  json a = json::array();
  for (auto& [id, o] : outs_)
    a.push_back({{"id", id},
                 {"transport", std::string(transport_name(o.transport))},
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
                 {"bytes", o.bytes}});
  return {{"next_id", next_id_}, {"outs", a}};
}

void PsOut::from_json(const json& j) {
  outs_.clear();
  if (!j.is_object()) return;
  next_id_ = j.value("next_id", 1u);
  if (!j.contains("outs") || !j["outs"].is_array()) return;
  for (auto& e : j["outs"]) {
    if (!e.is_object()) continue;
    Out o;
    o.transport = transport_from(e.value("transport", std::string("udp"))).value_or(Transport::Udp);
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
    // The RTP sequence goes on where the old instance left it.
    outs_.emplace(e.value("id", 0u), std::move(o));
  }
}

}  // namespace gb::play
