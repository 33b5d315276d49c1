// RTMP publisher (junction/rtmp/publisher.hpp).
#include <junction/rtmp/publisher.hpp>
#include <junction/util/encoding.hpp>

#include <junction/media/annexb.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace junction::rtmp {

namespace {

// Chunk streams: the usual split (commands apart from media so a big video message never
// delays a command).
constexpr uint32_t kCsidCommand = 3, kCsidAudio = 4, kCsidData = 5, kCsidVideo = 6;
constexpr size_t kServerHandshake = 1 + 2 * kHandshakeSize;  // S0 S1 S2
constexpr size_t kMaxServerMessage = 256u << 10;             // commands and control only

// Transaction ids of the commands sent.
constexpr double kTxnConnect = 1, kTxnRelease = 2, kTxnFcPublish = 3, kTxnCreateStream = 4, kTxnPublish = 5;

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

bool same(const std::vector<uint8_t>& v, const uint8_t* p, size_t n) {
  return v.size() == n && (n == 0 || std::memcmp(v.data(), p, n) == 0);
}

// Saved state is JSON with hex blobs (util/encoding.hpp's codec); a blob is at most 64 KiB.
std::string hex(const std::vector<uint8_t>& v) { return util::hex_encode({reinterpret_cast<const char*>(v.data()), v.size()}); }
bool unhex(const std::string& s, std::vector<uint8_t>& out) {
  std::string bytes;
  if (s.size() > 2 * 65536 || !util::hex_decode(s, bytes)) return false;
  out.assign(bytes.begin(), bytes.end());
  return true;
}

}  // namespace

const char* to_string(PublisherStatus s) {
  switch (s) {
    case PublisherStatus::Connecting: return "connecting";
    case PublisherStatus::Publishing: return "publishing";
    case PublisherStatus::Failed: return "failed";
    case PublisherStatus::Closed: return "closed";
  }
  return "?";
}

bool parse_url(std::string_view url, std::string_view stream_override, RtmpUrl* out, std::string* error) {
  constexpr std::string_view kScheme = "rtmp://";
  if (url.size() < kScheme.size() || !std::equal(kScheme.begin(), kScheme.end(), url.begin(), [](char a, char b) {
        return a == (b >= 'A' && b <= 'Z' ? b + 32 : b) || (a >= 'A' && a <= 'Z' && a + 32 == b);
      })) {
    *error = "URL must start with rtmp:// (rtmps and rtmpt are not supported)";
    return false;
  }
  std::string_view rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
  RtmpUrl u;
  std::string_view port;
  if (!authority.empty() && authority[0] == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      *error = "URL has an unclosed [ in its host";
      return false;
    }
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') {
        *error = "URL has junk after its [host]";
        return false;
      }
      port = after.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (u.host.empty()) {
    *error = "URL has no host";
    return false;
  }
  if (authority.find('@') != std::string_view::npos) {
    *error = "URL user info is not supported (put credentials in the stream's query)";
    return false;
  }
  if (!port.empty() || authority.back() == ':') {
    unsigned p = 0;
    auto r = std::from_chars(port.data(), port.data() + port.size(), p);
    if (port.empty() || r.ec != std::errc() || r.ptr != port.data() + port.size() || p == 0 || p > 65535) {
      *error = "URL port is not a number in 1..65535";
      return false;
    }
    u.port = static_cast<uint16_t>(p);
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (!stream_override.empty()) {
    u.app = std::string(path);
    u.stream = std::string(stream_override);
  } else {
    // The last path element is the stream (its query string stays with it).
    size_t q = path.find('?');
    size_t last = path.substr(0, q).rfind('/');
    if (last == std::string_view::npos) {
      u.app = std::string(path);
    } else {
      u.app = std::string(path.substr(0, last));
      u.stream = std::string(path.substr(last + 1));
    }
  }
  if (u.app.empty()) {
    *error = "URL has no application (rtmp://host/app/stream)";
    return false;
  }
  if (u.stream.empty()) {
    *error = "no stream name (in the URL's last path element or given apart)";
    return false;
  }
  bool v6 = u.host.find(':') != std::string::npos;
  u.tc_url = "rtmp://" + (v6 ? "[" + u.host + "]" : u.host);
  if (u.port != 1935) u.tc_url += ":" + std::to_string(u.port);
  u.tc_url += "/" + u.app;
  *out = std::move(u);
  return true;
}

struct Publisher::Sink final : ChunkReader::Sink {
  Publisher* p;
  explicit Sink(Publisher* pub) : p(pub) {}
  bool on_message(const Message& m) override { return p->handle_message(m); }
};

Publisher::Publisher(PublisherConfig cfg, PublisherCallbacks& cb)
    : cfg_(std::move(cfg)), cb_(cb), reader_(kMaxServerMessage) {
  if (!parse_url(cfg_.url, cfg_.stream, &url_, &reason_)) {
    status_ = PublisherStatus::Failed;
    phase_ = Phase::Done;
  }
  if (cfg_.chunk_size < 128 || cfg_.chunk_size > kMaxChunkSize) cfg_.chunk_size = 4096;
}

void Publisher::set_status(PublisherStatus s, std::string_view reason) {
  status_ = s;
  reason_ = std::string(reason);
  cb_.on_status(s, reason);
}

void Publisher::fail(std::string_view reason) {
  phase_ = Phase::Done;
  if (status_ == PublisherStatus::Failed || status_ == PublisherStatus::Closed) return;
  set_status(PublisherStatus::Failed, reason);
}

void Publisher::send_out(bool media) {
  size_t n = out_.size() - counted_;
  stats_.bytes_sent += n;
  if (phase_ != Phase::Handshake && phase_ != Phase::Idle) sent_after_handshake_ += n;
  counted_ = out_.size();
  if (media && cfg_.hold_media) return;  // the owner's flush() writes it with what follows
  flush();
}

void Publisher::flush() {
  if (out_.empty()) return;
  cb_.send(out_.data(), out_.size());
  out_.clear();  // keeps its capacity: no allocation per batch once grown
  counted_ = 0;
}

void Publisher::send_body(uint32_t csid, uint8_t type, uint32_t stream_id, uint32_t ts, bool media) {
  writer_.write(out_, csid, type, stream_id, ts, body_.data(), body_.size());
  send_out(media);
}

void Publisher::send_command(uint32_t stream_id, std::string_view name, double txn) {
  body_.clear();
  amf0::put_string(body_, name);
  amf0::put_number(body_, txn);
  amf0::put_null(body_);
  body_.insert(body_.end(), cmd_args_.begin(), cmd_args_.end());
  cmd_args_.clear();
  send_body(kCsidCommand, kCommandAmf0, stream_id, 0);
}

void Publisher::on_connected() {
  if (phase_ != Phase::Idle) {
    if (status_ == PublisherStatus::Failed) cb_.on_status(status_, reason_);  // the bad URL
    return;
  }
  phase_ = Phase::Handshake;
  set_status(PublisherStatus::Connecting, "handshake");
  // C0 (version 3) + C1: time 0, zero (a plain handshake: servers answer with S2 = C1 echoed),
  // 1528 bytes that only need to look random.
  out_.reserve(1 + kHandshakeSize);
  out_.push_back(3);
  out_.insert(out_.end(), 8, 0);
  uint64_t x = reinterpret_cast<uintptr_t>(this) * 0x9E3779B97F4A7C15ull | 1;
  for (size_t i = 8; i < kHandshakeSize; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out_.push_back(static_cast<uint8_t>(x >> 24));
  }
  send_out();
}

void Publisher::on_bytes(const uint8_t* data, size_t len) {
  stats_.bytes_received += len;
  if (phase_ == Phase::Idle || phase_ == Phase::Done) return;
  if (phase_ == Phase::Handshake) {
    size_t n = std::min(len, kServerHandshake - handshake_.size());
    handshake_.insert(handshake_.end(), data, data + n);
    data += n;
    len -= n;
    if (handshake_.size() < kServerHandshake) return;
    if (handshake_[0] != 3) {
      fail("handshake: the server speaks RTMP version " + std::to_string(handshake_[0]) + ", not 3");
      return;
    }
    // C2 echoes S1 (time, time2 = S1 time, S1 random).
    out_.assign(handshake_.begin() + 1, handshake_.begin() + 1 + kHandshakeSize);
    send_out();
    handshake_.clear();
    handshake_.shrink_to_fit();
    phase_ = Phase::Connect;
    write_set_chunk_size(writer_, out_, cfg_.chunk_size);
    writer_.set_chunk_size(cfg_.chunk_size);
    // The window the server acknowledges: a quarter of the queue bound, so the bound is
    // measured with at most that much slack.
    uint32_t window = cfg_.max_queue_bytes
                          ? static_cast<uint32_t>(std::clamp<size_t>(cfg_.max_queue_bytes / 4, 32u << 10, 2500000))
                          : 2500000;
    write_window_ack_size(writer_, out_, window);
    stats_.window = window;
    send_out();
    cmd_args_.clear();
    body_.clear();
    amf0::put_string(body_, "connect");
    amf0::put_number(body_, kTxnConnect);
    amf0::put_object_begin(body_);
    amf0::put_key(body_, "app");
    amf0::put_string(body_, url_.app);
    amf0::put_key(body_, "type");
    amf0::put_string(body_, "nonprivate");
    amf0::put_key(body_, "flashVer");
    amf0::put_string(body_, "FMLE/3.0 (compatible; Junction)");
    amf0::put_key(body_, "tcUrl");
    amf0::put_string(body_, url_.tc_url);
    amf0::put_object_end(body_);
    send_body(kCsidCommand, kCommandAmf0, 0, 0);
    if (len == 0) return;
  }
  received_after_handshake_ += len;
  Sink sink(this);
  auto r = reader_.feed(data, len, sink);
  if (r == ChunkReader::Result::Error) {
    fail(std::string("protocol error from the server: ") + reader_.error());
    return;
  }
  if (phase_ == Phase::Done) return;
  if (server_window_ && received_after_handshake_ - last_ack_sent_ >= server_window_) {
    write_acknowledgement(writer_, out_, static_cast<uint32_t>(received_after_handshake_));
    last_ack_sent_ = received_after_handshake_;
    ++stats_.acks_sent;
    send_out();
  }
}

void Publisher::on_disconnected() {
  out_.clear();  // held media has nowhere to go
  counted_ = 0;
  Phase was = phase_;
  phase_ = Phase::Done;
  if (status_ == PublisherStatus::Failed || status_ == PublisherStatus::Closed) return;
  const char* why = was == Phase::Publishing ? "connection closed"
                    : was == Phase::Handshake ? "connection closed during the handshake"
                                              : "connection closed before publishing started";
  set_status(PublisherStatus::Closed, why);
}

void Publisher::unpublish() {
  if (phase_ == Phase::Done || phase_ == Phase::Idle) {
    phase_ = Phase::Done;
    return;
  }
  if (phase_ == Phase::Publishing || phase_ == Phase::Publish) {
    amf0::put_string(cmd_args_, url_.stream);
    send_command(0, "FCUnpublish", 6);
    amf0::put_number(cmd_args_, stats_.stream_id);
    send_command(0, "deleteStream", 7);
  }
  phase_ = Phase::Done;
  if (status_ != PublisherStatus::Failed && status_ != PublisherStatus::Closed)
    set_status(PublisherStatus::Closed, "unpublished");
}

bool Publisher::handle_message(const Message& m) {
  const uint8_t* p = m.payload;
  uint32_t n = m.header.length;
  switch (m.header.type) {
    case kSetChunkSize:
      if (n >= 4) stats_.server_chunk_size = reader_.chunk_size();
      return true;
    case kAcknowledgement:
      if (n >= 4) {
        ack_seq_ = be32(p);
        acked_ = true;
        stats_.bytes_acknowledged = ack_seq_;
      }
      return true;
    case kWindowAckSize:
      if (n >= 4) server_window_ = stats_.server_window = be32(p);
      return true;
    case kSetPeerBandwidth:
      return true;  // we send what the frames need; the backlog bound limits the rest
    case kUserControl:
      if (n >= 6 && (p[0] << 8 | p[1]) == kPingRequest) {
        write_user_control(writer_, out_, kPingResponse, be32(p + 2));
        ++stats_.pings_answered;
        send_out();
      }
      return true;
    case kCommandAmf0:
      return handle_command(m);
    default:
      return true;  // data, audio, video, aggregate, AMF3: nothing a publisher needs
  }
}

bool Publisher::handle_command(const Message& m) {
  const char* err = nullptr;
  if (!amf0::decode_all(m.payload, m.header.length, &values_, &err)) {
    fail(std::string("bad AMF0 command from the server: ") + err);
    return false;
  }
  if (values_.size() < 2 || values_[0].type != amf0::Type::String) return true;  // not a command we know
  const std::string& name = values_[0].string;
  double txn = values_[1].type == amf0::Type::Number ? values_[1].number : -1;
  const amf0::Value* info = values_.size() > 3 ? &values_[3] : nullptr;
  auto describe = [&](std::string_view what) {
    std::string r(what);
    if (info && (info->type == amf0::Type::Object || info->type == amf0::Type::EcmaArray)) {
      std::string_view code = info->get_string("code"), desc = info->get_string("description");
      if (!code.empty()) r += std::string(": ") + std::string(code);
      if (!desc.empty()) r += std::string(" (") + std::string(desc) + ")";
    }
    return r;
  };
  if (name == "_result") {
    if (txn == kTxnConnect && phase_ == Phase::Connect) {
      phase_ = Phase::CreateStream;
      amf0::put_string(cmd_args_, url_.stream);
      send_command(0, "releaseStream", kTxnRelease);
      amf0::put_string(cmd_args_, url_.stream);
      send_command(0, "FCPublish", kTxnFcPublish);
      send_command(0, "createStream", kTxnCreateStream);
    } else if (txn == kTxnCreateStream && phase_ == Phase::CreateStream) {
      // Written as a positive range test so a NaN id (any comparison false) is refused, not cast.
      if (!info || info->type != amf0::Type::Number || !(info->number >= 1 && info->number <= 0xFFFFFF)) {
        fail("createStream result carries no stream id");
        return false;
      }
      stats_.stream_id = static_cast<uint32_t>(info->number);
      phase_ = Phase::Publish;
      amf0::put_string(cmd_args_, url_.stream);
      amf0::put_string(cmd_args_, "live");
      send_command(stats_.stream_id, "publish", kTxnPublish);
    }
    return true;
  }
  if (name == "_error") {
    // releaseStream / FCPublish are optional extensions: some servers refuse them, harmlessly.
    if (txn == kTxnRelease || txn == kTxnFcPublish) return true;
    const char* what = txn == kTxnConnect ? "connect refused" : txn == kTxnCreateStream ? "createStream refused"
                                                                                         : "publish refused";
    fail(describe(what));
    return false;
  }
  if (name == "onStatus") {
    if (info && info->get_string("level") == "error") {
      fail(describe("server error"));
      return false;
    }
    if (info && info->get_string("code") == "NetStream.Publish.Start" && phase_ == Phase::Publish) {
      phase_ = Phase::Publishing;
      set_status(PublisherStatus::Publishing, "NetStream.Publish.Start");
      send_metadata();
    }
    return true;
  }
  return true;  // onBWDone, onFCPublish, close...: nothing to do
}

void Publisher::send_metadata() {
  body_.clear();
  flv::metadata(cfg_.metadata, true, body_);
  send_body(kCsidData, kDataAmf0, stats_.stream_id, 0);
  metadata_sent_ = true;
}

uint64_t Publisher::unacknowledged() const {
  if (!acked_) return 0;
  uint32_t diff = static_cast<uint32_t>(sent_after_handshake_) - ack_seq_;
  return diff > 0x80000000u ? 0 : diff;  // a server that counts more than we sent (the handshake)
}

bool Publisher::over_backlog() const { return cfg_.max_queue_bytes && unacknowledged() > cfg_.max_queue_bytes; }

uint32_t Publisher::rebase(uint32_t ts, uint32_t* last) {
  if (!have_base_) {
    have_base_ = true;
    base_ts_ = ts;
  }
  uint32_t rel = ts - base_ts_;
  if (static_cast<int32_t>(rel) < 0) rel = 0;  // before the first frame sent (the other track)
  if (rel < *last) rel = *last;                // a track never goes back in time
  *last = rel;
  return rel;
}

void Publisher::drop_video(uint64_t* reason) {
  ++*reason;
  ++stats_.video_dropped;
}

void Publisher::drop_audio(uint64_t* reason) {
  ++*reason;
  ++stats_.audio_dropped;
}

void Publisher::push_video(const media::FrameView& f, uint32_t dts_ms, uint32_t pts_ms) {
  if (phase_ != Phase::Publishing) return drop_video(&stats_.dropped_not_publishing);
  if (f.meta.codec != JN_CODEC_H264 || !f.data || f.size == 0) return drop_video(&stats_.dropped_invalid);
  namespace h264 = media::annexb::h264;
  bool idr = false, vcl = false;
  // One scan of the access unit: the NAL units' places are kept for the body written below.
  nals_.clear();
  size_t body_len = 5;
  media::annexb::for_each_nal(f.data, f.size, [&](const uint8_t* nal, size_t n) {
    uint8_t t = h264::type(nal[0]);
    if (flv::avc_nalu_carries(t)) {
      nals_.push_back({static_cast<uint32_t>(nal - f.data), static_cast<uint32_t>(n)});
      body_len += 4 + n;
    }
    // Parameter sets are kept for the sequence header (assign reuses the vectors' storage).
    if (t == h264::kSps && !same(sps_, nal, n)) sps_.assign(nal, nal + n);
    if (t == h264::kPps && !same(pps_, nal, n)) pps_.assign(nal, nal + n);
    if (t == h264::kIdr) idr = true;
    if (t >= 1 && t <= 5) vcl = true;
    return true;
  });
  if (!vcl) return;  // parameter sets only (a JN_MF_CONFIG frame): remembered, nothing to send
  bool key = idr || (f.meta.frame_flags & JN_MF_KEY);
  if ((f.meta.frame_flags & JN_MF_DISCONT) && !key) need_keyframe_ = true;  // lost references upstream
  if (over_backlog()) {
    need_keyframe_ = true;  // a dropped reference frame breaks everything up to the next keyframe
    return drop_video(&stats_.dropped_backlog);
  }
  if (need_keyframe_ && (!key || sps_.empty() || pps_.empty())) return drop_video(&stats_.dropped_wait_keyframe);
  uint32_t ts = rebase(dts_ms, &last_video_ts_);
  const char* err = nullptr;
  if (key && (!same(sent_sps_, sps_.data(), sps_.size()) || !same(sent_pps_, pps_.data(), pps_.size()))) {
    body_.clear();
    if (!flv::avc_sequence_header(sps_, pps_, body_, &err)) return drop_video(&stats_.dropped_invalid);
    send_body(kCsidVideo, kVideoMessage, stats_.stream_id, ts, true);
    sent_sps_.assign(sps_.begin(), sps_.end());
    sent_pps_.assign(pps_.begin(), pps_.end());
    ++stats_.sequence_headers;
  }
  // The body goes straight into the chunk stream (flv::avc_nalu's bytes, without its buffer).
  uint8_t head[5];
  if (nals_.empty() || !flv::avc_nalu_header(key, static_cast<int32_t>(pts_ms - dts_ms), head, &err))
    return drop_video(&stats_.dropped_invalid);
  ChunkOut w = writer_.begin(out_, kCsidVideo, kVideoMessage, stats_.stream_id, ts, body_len);
  w.put(head, 5);
  for (const NalSpan& s : nals_) {
    w.put_u32(s.len);
    w.put(f.data + s.off, s.len);
  }
  send_out(true);
  need_keyframe_ = false;
  ++stats_.video_frames;
}

void Publisher::push_audio(const media::FrameView& f, uint32_t ts_ms) {
  if (phase_ != Phase::Publishing) return drop_audio(&stats_.dropped_not_publishing);
  uint32_t codec = f.meta.codec;
  if (!f.data || f.size == 0 || !flv::audio_header(codec)) return drop_audio(&stats_.dropped_invalid);
  if (codec == JN_CODEC_AAC && (f.meta.frame_flags & JN_MF_CONFIG)) {
    if (!same(aac_config_, f.data, f.size)) aac_config_.assign(f.data, f.data + f.size);
    return;
  }
  if (codec == JN_CODEC_AAC && aac_config_.empty()) return drop_audio(&stats_.dropped_invalid);
  if (over_backlog()) return drop_audio(&stats_.dropped_backlog);
  uint32_t ts = rebase(ts_ms, &last_audio_ts_);
  const char* err = nullptr;
  if (codec == JN_CODEC_AAC && !same(sent_aac_config_, aac_config_.data(), aac_config_.size())) {
    body_.clear();
    if (!flv::aac_sequence_header(aac_config_, body_, &err)) return drop_audio(&stats_.dropped_invalid);
    send_body(kCsidAudio, kAudioMessage, stats_.stream_id, ts, true);
    sent_aac_config_.assign(aac_config_.begin(), aac_config_.end());
    ++stats_.sequence_headers;
  }
  body_.clear();
  if (!flv::audio_frame(codec, f.data, f.size, body_, &err)) return drop_audio(&stats_.dropped_invalid);
  send_body(kCsidAudio, kAudioMessage, stats_.stream_id, ts, true);
  ++stats_.audio_frames;
}

std::string Publisher::save() const {
  if (phase_ != Phase::Publishing) return {};
  nlohmann::json j;
  j["v"] = 1;
  j["url"] = url_.tc_url + "/" + url_.stream;
  j["writer_chunk_size"] = writer_.chunk_size();
  j["reader"] = reader_.save();
  j["sent"] = sent_after_handshake_;
  j["received"] = received_after_handshake_;
  j["last_ack_sent"] = last_ack_sent_;
  j["acked"] = acked_;
  j["ack_seq"] = ack_seq_;
  j["server_window"] = server_window_;
  j["sps"] = hex(sps_);
  j["pps"] = hex(pps_);
  j["sent_sps"] = hex(sent_sps_);
  j["sent_pps"] = hex(sent_pps_);
  j["aac"] = hex(aac_config_);
  j["sent_aac"] = hex(sent_aac_config_);
  j["need_keyframe"] = need_keyframe_;
  j["metadata_sent"] = metadata_sent_;
  j["have_base"] = have_base_;
  j["base_ts"] = base_ts_;
  j["last_video_ts"] = last_video_ts_;
  j["last_audio_ts"] = last_audio_ts_;
  const auto& st = stats_;
  j["stats"] = {st.bytes_sent, st.bytes_received, st.bytes_acknowledged, st.video_frames, st.audio_frames,
                st.video_dropped, st.audio_dropped, st.dropped_not_publishing, st.dropped_backlog,
                st.dropped_wait_keyframe, st.dropped_invalid, st.sequence_headers, st.acks_sent, st.pings_answered,
                st.server_window, st.server_chunk_size, st.stream_id, st.window};
  return j.dump();
}

bool Publisher::restore(std::string_view bytes, std::string& error) {
  auto bad = [&](std::string why) {
    error = "rtmp publisher state: " + why;
    return false;
  };
  if (phase_ != Phase::Idle) return bad("restore() must come first, on a new Publisher with a valid URL");
  auto j = nlohmann::json::parse(bytes, nullptr, false);
  if (!j.is_object() || j.value("v", 0) != 1) return bad("not a version 1 state");
  try {
    if (j.at("url").get<std::string>() != url_.tc_url + "/" + url_.stream)
      return bad("saved for another URL or stream");
    ChunkReader reader(kMaxServerMessage);
    if (!reader.restore(j.at("reader").get<std::string>(), error)) return false;
    ChunkWriter writer;
    if (!writer.set_chunk_size(j.at("writer_chunk_size").get<uint32_t>())) return bad("bad chunk size");
    std::vector<uint8_t> sps, pps, sent_sps, sent_pps, aac, sent_aac;
    if (!unhex(j.at("sps").get<std::string>(), sps) || !unhex(j.at("pps").get<std::string>(), pps) ||
        !unhex(j.at("sent_sps").get<std::string>(), sent_sps) || !unhex(j.at("sent_pps").get<std::string>(), sent_pps) ||
        !unhex(j.at("aac").get<std::string>(), aac) || !unhex(j.at("sent_aac").get<std::string>(), sent_aac))
      return bad("bad parameter sets");
    const auto& st = j.at("stats");
    if (!st.is_array() || st.size() != 18) return bad("bad stats");
    PublisherStats s;
    uint64_t* counters[] = {&s.bytes_sent, &s.bytes_received, &s.bytes_acknowledged, &s.video_frames, &s.audio_frames,
                            &s.video_dropped, &s.audio_dropped, &s.dropped_not_publishing, &s.dropped_backlog,
                            &s.dropped_wait_keyframe, &s.dropped_invalid, &s.sequence_headers, &s.acks_sent,
                            &s.pings_answered};
    for (size_t i = 0; i < 14; ++i) *counters[i] = st[i].get<uint64_t>();
    s.server_window = st[14].get<uint32_t>();
    s.server_chunk_size = st[15].get<uint32_t>();
    s.stream_id = st[16].get<uint32_t>();
    s.window = st[17].get<uint32_t>();
    if (s.stream_id == 0) return bad("no stream id");
    sent_after_handshake_ = j.at("sent").get<uint64_t>();
    received_after_handshake_ = j.at("received").get<uint64_t>();
    last_ack_sent_ = j.at("last_ack_sent").get<uint64_t>();
    acked_ = j.at("acked").get<bool>();
    ack_seq_ = j.at("ack_seq").get<uint32_t>();
    server_window_ = j.at("server_window").get<uint32_t>();
    need_keyframe_ = j.at("need_keyframe").get<bool>();
    metadata_sent_ = j.at("metadata_sent").get<bool>();
    have_base_ = j.at("have_base").get<bool>();
    base_ts_ = j.at("base_ts").get<uint32_t>();
    last_video_ts_ = j.at("last_video_ts").get<uint32_t>();
    last_audio_ts_ = j.at("last_audio_ts").get<uint32_t>();
    reader_ = std::move(reader);
    writer_ = writer;
    sps_ = std::move(sps);
    pps_ = std::move(pps);
    sent_sps_ = std::move(sent_sps);
    sent_pps_ = std::move(sent_pps);
    aac_config_ = std::move(aac);
    sent_aac_config_ = std::move(sent_aac);
    stats_ = s;
  } catch (const std::exception& e) {  // control plane: a missing or mistyped field
    return bad(e.what());
  }
  phase_ = Phase::Publishing;
  status_ = PublisherStatus::Publishing;
  reason_ = "restored";
  return true;
}

}  // namespace junction::rtmp
