// WebRTC offer/answer (RFC 8829 JSEP as browsers speak it, RFC 8843 BUNDLE, RFC 8839 ICE,
// RFC 8842 DTLS, RFC 8841 SCTP) on top of the generic SDP model (junction/proto/sdp.hpp).
//
// parse_description() reads a browser's offer (or answer) into a Description: per m-line its
// kind, mid, direction, rtcp-mux, ICE credentials (media level, else session level),
// fingerprint, setup role, candidates, codecs (rtpmap / fmtp / rtcp-fb, in the m-line's order),
// ssrc / msid, and for the application m-line the sctp-port and max-message-size.
//
// build_answer() answers it as an ICE-lite DTLS server (a=setup:passive): one port for the
// BUNDLE group, or one transport per m-line when the offer has no BUNDLE (max-compat); per
// kind the first codec of the caller's preference list the offer also has (so what the far leg
// already carries goes through without transcoding); m-lines it cannot take are answered with
// port 0 and the reason reported in AnswerResult. A video m-line is answered sendonly when we
// have video to send and the offer lets the browser receive, port 0 when we have none.
// build_offer() makes our own offer (a=setup:actpass) for server-initiated calls and verto.attach;
// apply_answer() reads the browser's answer to it.
//
// to_media_streams() / LocalMedia::from_media_stream() map to and from the ABI's jn_media_stream
// so a plugin can carry the negotiation in core calls. Setup-time code: allocates, never throws
// on bad input (errors come back as text).
#pragma once

#include <junction/abi.h>
#include <junction/proto/sdp.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace junction::webrtc {

// One RTP payload format of an m-line.
struct Codec {
  std::string name;                  // as in a=rtpmap ("opus", "PCMA", "H264", "VP8", "rtx", ...)
  uint8_t pt = 0;
  uint32_t clock_rate = 0;
  uint32_t channels = 0;             // audio: 0 = not given (1)
  std::string fmtp;                  // a=fmtp parameters, as written
  std::vector<std::string> rtcp_fb;  // a=rtcp-fb values for this pt (and "*"), e.g. "nack pli"
  bool has_fb(std::string_view fb) const;
};

// The name sdk/media and the ABI use for an rtpmap name: "OPUS", "PCMA", "PCMU", "H264", "VP8",
// "TELEPHONE-EVENT", ... (upper case).
std::string canonical_codec_name(std::string_view rtpmap_name);

// JN_MEDIA_AUDIO / VIDEO / DATA for "audio" / "video" / "application"; 0 for anything else.
uint32_t media_kind(std::string_view m);

struct MediaSection {
  uint32_t kind = 0;          // JN_MEDIA_*; 0 = a kind we do not know (always refused)
  std::string media;          // m= media as written
  uint16_t port = 0;          // 0: the m-line is rejected / disabled
  std::string proto;          // "UDP/TLS/RTP/SAVPF", "UDP/DTLS/SCTP", ...
  std::vector<std::string> formats;  // m= formats as written
  std::string mid;
  uint32_t direction = JN_DIR_SENDRECV;  // of the side that wrote the description
  bool rtcp_mux = false;
  bool rtcp_rsize = false;
  bool bundle_only = false;
  std::string ice_ufrag, ice_pwd;  // media level, else the session's
  std::string fingerprint;         // "sha-256 AB:CD:..." (media level, else the session's)
  uint32_t setup = JN_SETUP_NONE;  // JN_SETUP_*
  std::vector<std::string> candidates;  // a=candidate values
  bool end_of_candidates = false;
  std::string address;            // c= address (max-compat clients put their address there)
  std::vector<Codec> codecs;      // RTP: in m-line order
  std::vector<uint32_t> ssrcs;    // a=ssrc ids in order of appearance (first = media, then rtx/fec)
  std::string msid;               // a=msid value (or the ssrc's msid)
  std::string cname;
  // Application m-line (data channels, RFC 8841).
  uint16_t sctp_port = 0;
  uint32_t max_message_size = 0;  // 0 = not given (RFC 8841: 64 KiB assumed)

  bool rejected() const { return port == 0 && !bundle_only; }
  bool is_data() const { return kind == JN_MEDIA_DATA; }
  const Codec* codec_by_pt(uint8_t pt) const;
};

struct Description {
  std::vector<MediaSection> media;      // in m-line order
  std::vector<std::string> bundle_mids;  // a=group:BUNDLE (empty: no BUNDLE)
  bool ice_lite = false;
  std::string origin_session_id;
  bool bundled(std::string_view mid) const;
};

struct ParseError {
  std::string reason;  // human-readable, for the log and the signalling error
};

// Parses a browser's SDP. False + err on SDP that is not usable for WebRTC: not parseable, no
// m-line, a non-rejected RTP m-line without ICE credentials or fingerprint, a bad rtpmap.
bool parse_description(std::string_view sdp, Description& out, ParseError& err);

// --- what this side can do ---------------------------------------------------------------

// One acceptable codec in the caller's preference order. name: canonical ("OPUS", "PCMA",
// "PCMU", "H264", "VP8", "G722"). H264 matches only packetization-mode=1 with a profile a
// constrained-baseline decoder can take (profile-level-id 42xxxx or with constraint_set1, e.g.
// 42e01f, 42001f; not 4d/64 unless constraint_set1).
struct CodecPref {
  std::string name;
  uint32_t clock_rate = 0;  // 0: any
  uint32_t channels = 0;    // 0: any
};

// What the far leg has for one kind.
struct LocalMedia {
  std::vector<CodecPref> codecs;  // preference order; empty: this kind is refused
  bool can_send = false;          // we have this media to send to the browser (a bus stream)
  bool can_receive = true;        // we take the browser's media (publish it on the bus)
  std::string bus_stream;         // the bus stream we would send from, if known
  // From a far leg's jn_media_stream (its format + codecs become the preference list;
  // direction sendonly/sendrecv -> can_send; recvonly/sendrecv -> can_receive).
  static LocalMedia from_media_stream(const jn_media_stream& s);
};

struct LocalTransport {
  std::string ice_ufrag, ice_pwd;   // ours (IceLite's)
  std::string fingerprint;          // ours ("sha-256 AB:...")
  std::vector<std::string> candidates;  // a=candidate values for this transport's port
  std::string address = "127.0.0.1";    // c= / o= address
  uint16_t port = 9;                    // m= port (the candidates' port; 9 = discard when none)
};

struct AnswerOptions {
  LocalMedia audio, video;
  bool data_channels = false;       // accept an application m-line
  uint32_t max_message_size = 262144;
  // One entry for BUNDLE; without BUNDLE the n-th accepted m-line uses transports[n] (the last
  // one again when there are fewer: the caller gives one per m-line for max-compat).
  std::vector<LocalTransport> transports;
  std::string session_id;           // o= session id; empty: a random one
  uint64_t session_version = 1;
  uint32_t ssrc_seed = 0;           // nonzero: our SSRCs are seed, seed+1, ... (tests); else random
  std::string cname = "junction";   // a=ssrc cname and msid stream id
};

// The outcome for one m-line of the offer.
struct MLineResult {
  size_t index = 0;
  std::string mid;
  uint32_t kind = 0;
  bool accepted = false;
  std::string reason;             // why refused ("no common codec (offer: VP9)", "no video to send", ...)
  uint32_t direction = JN_DIR_INACTIVE;  // ours, as answered
  Codec codec;                    // RTP: the chosen codec with the browser's pt
  int telephone_event_pt = -1;    // audio: the browser's telephone-event pt at the codec's clock
  uint32_t remote_ssrc = 0;       // the browser's media SSRC (0 = not announced)
  uint32_t local_ssrc = 0;        // the SSRC we send with (announced in our SDP; 0 for data)
  size_t transport = 0;           // index into AnswerOptions::transports / the PeerConnection's transports
  uint16_t sctp_port = 0;         // data: the browser's sctp port
  uint32_t max_message_size = 0;  // data: the browser's limit
};

struct AnswerResult {
  std::string sdp;                 // our answer
  Description local;               // our answer, parsed model
  std::vector<MLineResult> lines;  // one per offer m-line
  bool bundle = false;
  // Remote transport parameters per transport index (BUNDLE: one).
  struct Remote {
    std::string ice_ufrag, ice_pwd, fingerprint;
    uint32_t setup = JN_SETUP_ACTPASS;
    std::vector<std::string> candidates;
  };
  std::vector<Remote> remotes;
  // "audio: PCMA pt 8; video: refused (no common codec)" for a log line / verto message.
  std::string summary() const;
  const MLineResult* first(uint32_t kind) const;
};

// Answers a parsed offer. False + err when nothing at all can be accepted or the options are
// incomplete (no transport); `out.lines` still says why each m-line was refused.
bool build_answer(const Description& offer, const AnswerOptions& opt, AnswerResult& out, ParseError& err);

// --- our own offers ----------------------------------------------------------------------

struct OfferOptions {
  // Each entry: one m-line in this order; codecs offered in preference order with the payload
  // types given in `pts` (or, when empty: the static pts for PCMU 0 / PCMA 8 / G722 9, dynamic
  // 96... for others).
  struct Line {
    uint32_t kind = JN_MEDIA_AUDIO;
    std::vector<CodecPref> codecs;
    uint32_t direction = JN_DIR_SENDRECV;
    std::string mid;  // empty: "0", "1", ...
  };
  std::vector<Line> lines;
  bool data_channels = false;  // an application m-line at the end
  uint32_t max_message_size = 262144;
  LocalTransport transport;    // BUNDLE: one transport for all
  std::string session_id;
  uint64_t session_version = 1;
  uint32_t ssrc_seed = 0;      // nonzero: SSRCs announced are seed, seed+1, ... (tests); else random
};

struct OfferResult {
  std::string sdp;
  Description local;
  std::vector<uint32_t> ssrcs;  // our sending SSRC per m-line (0 for data)
};

bool build_offer(const OfferOptions& opt, OfferResult& out, ParseError& err);

// Reads the browser's answer to our offer: per m-line what it accepted (codec = the first of the
// answer's codecs that we offered). False + err when the answer does not match the offer (m-line
// count or kinds differ, no ICE/fingerprint).
bool apply_answer(const Description& our_offer, std::string_view answer_sdp, AnswerResult& out, ParseError& err);

// --- ABI mapping -------------------------------------------------------------------------

// Owns the strings and arrays a jn_media_desc borrows.
class MediaStreams {
 public:
  MediaStreams() = default;
  MediaStreams(const MediaStreams&) = delete;
  MediaStreams& operator=(const MediaStreams&) = delete;
  const jn_media_desc* desc() const { return &desc_; }
  size_t size() const { return streams_.size(); }
  jn_media_stream& operator[](size_t i) { return streams_[i]; }

  // Internal storage (for the builders below).
  struct Entry {
    std::string format, transport, mid, ufrag, pwd, fingerprint, bus_stream, params;
    std::vector<std::string> cand_text;
    std::vector<jn_str> cands;
    std::vector<std::string> codec_text;  // name, fmtp, fb per codec
    std::vector<jn_codec> codecs;
  };
  void finish();  // points the jn_ structs at the entries (call after filling)
  std::vector<std::unique_ptr<Entry>> entries_;
  std::vector<jn_media_stream> streams_;

 private:
  std::vector<const jn_media_stream*> ptrs_;
  jn_media_desc desc_{sizeof(jn_media_desc), 0, nullptr};
};

// The browser's side of a description (an offer, or its answer) as jn_media_streams: one per
// non-rejected audio/video/data m-line, codecs in the browser's order with canonical names,
// transport "udp/tls/rtp/savpf" (data: "udp/dtls/sctp"), mid, ICE, fingerprint, setup,
// candidates, first SSRC, JN_MS_RTCP_MUX.
void to_media_streams(const Description& d, MediaStreams& out);
// The outcome of our answer (or of apply_answer) as jn_media_streams for the core: per accepted
// m-line the chosen codec (the browser's pt), our direction, the browser's SSRC, and as
// bus_stream the name given for that kind (where the browser's media is published; may be null).
void to_media_streams(const AnswerResult& r, MediaStreams& out, const std::string* bus_audio = nullptr,
                      const std::string* bus_video = nullptr);

// H.264 fmtp helpers (also used by the bridge).
bool h264_fmtp_acceptable(std::string_view fmtp);  // packetization-mode=1 + CB-compatible profile

}  // namespace junction::webrtc
