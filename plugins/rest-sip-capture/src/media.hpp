// The media plane of a capture: RTP in on a media loop (the call's RTP/RTCP pairs from the core's
// port range), depacketized by sdk/media into frames that go (1) on the bus as
// rest-sip-capture/<callId>/video|audio and (2) straight into the call's RTMP outputs, with audio
// and video timestamps put on one millisecond clock. RTCP receiver reports, PLI/FIR and RFC 4733
// DTMF are built here too (pure functions, unit-tested).
//
// Threads: a CallMedia (and each bus push) is a Shard with its own mutex, taken once per on_udp
// batch / on_tcp event on its media loop and by the control hooks that touch it. Nothing here
// allocates per packet: frames are copied once into a bus buffer when the bus stream is published.
#pragma once

#include "model.hpp"
#include "aac.hpp"
#include "rtmp_out.hpp"

#include <junction/media/rtp_depacketizer.hpp>
#include <junction/plugin.hpp>
#include <junction/proto/rtp.hpp>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace capture {

// Cookie kinds (top byte); the low 56 bits carry a call or push id.
enum Kind : uint64_t {
  kRtpAudio = 1, kRtcpAudio = 2, kRtpVideo = 3, kRtcpVideo = 4, kRtmpConn = 5, kPushPost = 6, kHttpEvent = 7,
  kTickTimer = 8, kEventTimer = 9, kReconnectTimer = 10, kSipResolve = 11, kRtmpDns = 12, kBusSub = 13, kDtmfTimer = 14
};
inline uint64_t cookie(Kind k, uint64_t id) { return (static_cast<uint64_t>(k) << 56) | (id & 0x00ffffffffffffffull); }
inline Kind cookie_kind(uint64_t c) { return static_cast<Kind>(c >> 56); }
inline uint64_t cookie_id(uint64_t c) { return c & 0x00ffffffffffffffull; }

// --- RTCP / RFC 4733 builders (pure) ------------------------------------------------------------
// RR + SDES(CNAME) for one source. prev_*: the values at the last report (updated), for the
// fraction lost. lsr: middle 32 bits of the last SR's NTP time, dlsr in 1/65536 s. Returns bytes.
size_t build_rr(uint8_t* out, size_t cap, uint32_t own_ssrc, const junction::proto::rtp::ReceiverStats& st,
                uint64_t& prev_expected, uint64_t& prev_received, uint32_t lsr, uint32_t dlsr, std::string_view cname);
// RTCP PLI (RFC 4585 6.3.1) followed by FIR (RFC 5104 4.3.1) in one compound.
size_t build_pli_fir(uint8_t* out, size_t cap, uint32_t own_ssrc, uint32_t media_ssrc, uint8_t fir_seq);
// One RFC 4733 telephone-event packet.
size_t build_dtmf(uint8_t* out, size_t cap, int pt, bool marker, uint16_t seq, uint32_t ts, uint32_t ssrc, uint8_t event,
                  bool end, uint16_t duration);
// '0'..'9' '*' '#' 'A'..'D' -> event code 0..15 (-1 otherwise).
int dtmf_event(char digit);

// --- per-call state --------------------------------------------------------------------------
struct Shard {
  std::mutex mu;
};

// One RTMP output: the call's own (rtmpUrl/rtmpStream), one added by /push/startup, or a push of
// another plugin's bus stream. Its TCP connection lives on the shard's media loop.
struct Push final : RtmpOutEvents {
  Push(junction::sdk::Host h) : host(h) {}
  uint64_t id = 0;
  uint64_t call = 0;       // the call's id, 0 for a bus push
  std::string bus_stream;  // a bus push's stream prefix
  RtmpTarget target;
  std::shared_ptr<Shard> shard;  // whose lock guards this push
  junction::sdk::Host host;
  uint32_t loop = 0;
  jn_handle conn = 0;
  std::unique_ptr<RtmpOut> out;
  // reported to the control loop (kPushPost) by the output's callbacks
  bool changed = false;
  OutStatus out_status = OutStatus::Connecting;
  std::string out_reason;
  bool closed = false;     // the TCP connection is gone
  uint32_t attempt_no = 0; // which connection attempt the cookie names
  jn_handle pending_conn = 0;  // tcp_connect's handle until CONNECTED
  // control loop only
  RtmpStatus status = RtmpStatus::Wait;
  std::string reason;
  bool ever_active = false, stopped = false, primary = false;
  uint32_t attempts = 0;
  jn_handle retry_timer = 0;
  uint64_t bytes_out = 0, win_bytes = 0;
  double kbps = 0;
  // a bus push's own clock (a call's pushes use the call's)
  bool have_t0 = false;
  uint64_t t0_ms = 0;
  bool have_vbase = false, have_abase = false;
  int64_t vbase = 0, abase = 0;
  uint64_t vbase_ms = 0, abase_ms = 0;
  jn_handle sub_video = 0, sub_audio = 0;

  // A call's output is batched (make_rtmp_out): its media bytes wait in the publisher and go in
  // one TCP write per rtmp_write_ms (deliver): each write wakes the RTMP server and costs a
  // context switch, the largest cost per capture after the UDP receive (bench/sip_capture).
  uint64_t last_flush_ms = 0;
  void rtmp_send(const uint8_t* data, size_t len) override {
    bytes_out += len;
    win_bytes += len;
    if (conn) host.tcp_send(conn, std::string_view(reinterpret_cast<const char*>(data), len));
  }
  void flush() {
    if (out) out->flush();
  }
  void rtmp_status(OutStatus s, std::string_view why) override {
    out_status = s;
    out_reason = std::string(why);
    if (!changed) {
      changed = true;
      host.post(0, (static_cast<uint64_t>(kPushPost) << 56) | id);
    }
  }
};

struct Stream {
  std::unique_ptr<junction::media::RtpDepacketizer> depack;
  junction::proto::rtp::ReceiverStats stats;
  int pt = -1;
  uint32_t codec = 0, clock = 0;
  std::string encoding, fmtp;
  jn_addr remote_rtp{}, remote_rtcp{};
  jn_handle rtp = 0, rtcp = 0;
  uint16_t port = 0;
  uint32_t bus_id = 0;
  uint32_t own_ssrc = 0;
  // one clock for A and V: the first frame's arrival, then its RTP time
  bool have_base = false;
  int64_t base_pts = 0;
  uint64_t base_ms = 0;
  // RTCP
  uint32_t lsr = 0;
  uint64_t lsr_at_ms = 0;
  // the last SR's NTP time (ms) and RTP timestamp: the sender's wallclock for A/V alignment
  bool have_sr = false;
  int64_t sr_ntp_ms = 0;
  uint32_t sr_rtp = 0;
  uint64_t prev_expected = 0, prev_received = 0;
  // counters
  uint64_t frames = 0, bytes = 0, win_bytes = 0, packets = 0;
  double kbps = 0;
};

struct CallMedia : Shard {
  uint64_t id = 0;
  std::string call_id;
  uint32_t loop = 0;
  Stream audio, video;
  int dtmf_pt = 101;
  uint16_t dtmf_seq = 0;
  uint32_t dtmf_ts = 0;
  bool answered = false;        // an answer's media is applied
  bool keyframe_seen = false;
  bool want_keyframe = true;    // until the first keyframe, and after a loss
  uint8_t fir_seq = 0;
  uint64_t last_kf_req_ms = 0;
  uint64_t bad_packets = 0, dropped_packets = 0;
  uint64_t last_rx_ms = 0, t0_ms = 0;
  bool have_t0 = false;
  bool sr_aligned = false;      // audio moved onto video's clock by the senders' reports (once)
  int64_t sr_shift_ms = 0;
  bool publish_bus = true;
  std::vector<std::shared_ptr<Push>> pushes;
  // rtmp_audio = "aac": the call's G.711 encoded once for all its outputs (opened at the first
  // audio frame; aac_failed after a refusal, logged once: the outputs then carry no audio)
  std::unique_ptr<AacEncoder> aac;
  bool aac_failed = false;
  std::string aac_resume;  // a suspended encoder's rest (hot reload): the next encoder starts from it
};

// The end of a call's AAC encoder (pushes.cpp): reload false = the call ends (every sample is
// sent), true = a hot reload (the rest kept in aac_resume). The call's lock held.
void aac_end(CallMedia& m, bool reload);

}  // namespace capture
