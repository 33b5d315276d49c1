// MPEG-2 program stream (ISO/IEC 13818-1, 2.5) demuxer, as GB/T 28181 devices send it: pack
// headers (with stuffing), system headers, a program stream map (PSM) or none, one video PES
// stream (0xE0..0xEF: H.264 0x1B, H.265 0x24) and one audio PES stream (0xC0..0xDF: G.711A 0x90,
// G.711U 0x91, AAC/ADTS 0x0F). Produces media frames (junction/media_frame.h): one Annex-B
// access unit per video frame (4-byte start codes, JN_MF_KEY / JN_MF_CONFIG, parameter sets
// repeated before a keyframe that lacks them), one codec frame per audio frame (one G.711 PES;
// one ADTS frame of AAC, header removed, with a 2-byte AudioSpecificConfig frame (JN_MF_CONFIG)
// first and whenever it changes). Timestamps: video in 90 kHz; audio in its sample rate
// (meta.clock_rate 8000 for G.711, as media_frame.h says), converted from the PES's 90 kHz PTS
// rounded to nearest, so PsMuxer's conversion back is exact. 33-bit PTS wraps are unwrapped.
// Without a PSM the codecs are guessed: H.265 from a VPS/SPS/PPS/AUD/SEI/IRAP NAL header with
// layer 0, else H.264; audio AAC from an ADTS sync word, G.711 A-law unless the first PES looks
// like mu-law, MPEG audio refused. A video AU is passed on when the next one starts; an audio PES
// when the start code after it proves its length right (or at mark_loss / flush) -- or both at
// frame_end() (the RTP marker), once the stream has shown its markers can be trusted (below).
//
// Input is fed in arbitrary chunks (RTP payloads, TCP reads): every header may be split anywhere.
// Access units are found from the elementary stream itself (AUD, parameter sets, SEI, first
// slice of a picture), so a PES may carry part of an AU or the end of one and the start of the
// next (as libavformat's muxer writes them). A video AU is complete when the next one starts
// (one frame of latency) or at flush().
//
// The RTP marker (frame_end()): GB/T 28181 devices set it on the last packet of a frame's PS
// bytes, so the AU in progress is whole then and can go out at once (no frame of latency; the
// first keyframe of a stream included). A device that never sets the marker gets the old rule
// (nothing else changes). Some set it wrong (on every packet, or every slice); each marker is
// checked, and one that is not on an AU boundary -- inside a PES or a header, bytes that end on a
// start code, or (seen with the next NAL unit) followed by anything but the start code of a NAL
// unit that starts an AU -- sets the stream to Ignored: the old rule for good (until reset()),
// counted in stats().marker_mismatches. Most wrong markers are caught before anything is emitted
// (a marker inside a PES); the one case that costs a frame is a marker at a PES boundary inside an
// AU (one PES per slice, each marked): that first AU goes out short and the next frame carries
// JN_MF_DISCONT (the consumer sees the gap). A stream can instead be made to earn trust first
// (`marker_trust_after` > 0: AUs close by the old rule until that many markers in a row were
// verified on AU boundaries: Learning), at the price of the latency of those first frames.
//
// Damage: mark_loss() (the RTP layer saw a sequence gap) or any malformed header, PES length that
// does not end on a start code, NAL unit with forbidden_zero_bit, or size cap drops every frame in
// progress and hunts for the next pack header; the next frame of each track carries JN_MF_DISCONT
// and meta.seq skips one (a consumer sees the gap). A frame is never emitted half-written.
//
// Pure code: no I/O, no threads, nothing thrown. Storage is reserved at construction and grows
// (amortised, up to the configured caps) only while a stream's frames grow, never per packet.
#pragma once

#include <junction/media/frame.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace junction::media {

// PS stream_type values (ISO/IEC 13818-1 table 2-34, GB/T 28181 annex C).
enum PsStreamType : uint8_t {
  kPsTypeAac = 0x0F,   // ISO/IEC 13818-7 audio with ADTS transport syntax
  kPsTypeH264 = 0x1B,
  kPsTypeH265 = 0x24,
  kPsTypeG711A = 0x90,
  kPsTypeG711U = 0x91,
};

enum class PsError : uint8_t {
  None = 0,
  Mpeg1Pack,        // an ISO/IEC 11172-1 (MPEG-1) pack header: refused, skipped until an MPEG-2 pack
  BadPackHeader,    // marker bits of a pack header wrong
  BadStartCode,     // a structure did not end where the next start code should be
  BadPesHeader,     // PES marker bits, flags or header length wrong
  BadPsm,           // program stream map malformed or too long
  UnsupportedType,  // a PSM stream type the demuxer cannot turn into frames (stream skipped)
  FrameTooLarge,    // an access unit beyond the configured cap (dropped)
  BadNal,           // a NAL unit with forbidden_zero_bit set (bytes that are not video)
  BadAdts,          // AAC without an ADTS sync word / with a bad frame length
  Loss,             // the transport reported a loss (mark_loss)
};
const char* to_string(PsError e);

struct PsDemuxerConfig {
  bool close_on_marker = true;        // frame_end() may close an AU (see above); false: old rule only
  uint32_t marker_trust_after = 0;    // markers verified on AU boundaries before they close AUs (0: at once)
  size_t max_video_frame = 4u << 20;  // bytes of one video access unit; larger ones are dropped
  size_t max_audio_frame = 16u << 10;  // bytes of one audio PES / ADTS frame
  size_t initial_video_reserve = 256u << 10;
  uint16_t video_track = 0;
  uint16_t audio_track = 1;
};

struct PsDemuxerStats {
  uint64_t bytes = 0;             // fed
  uint64_t packs = 0;             // MPEG-2 pack headers
  uint64_t pes = 0;               // PES packets of the two streams taken
  uint64_t video_frames = 0;      // emitted
  uint64_t audio_frames = 0;      // emitted (AAC config frames included)
  uint64_t dropped_frames = 0;    // damaged or oversized frames dropped
  uint64_t resyncs = 0;           // times the parser lost sync and hunted for a pack header
  uint64_t skipped_bytes = 0;     // bytes discarded while hunting
  uint64_t errors = 0;            // malformed structures (each also reported to the sink's error callback)
  uint64_t mpeg1_packs = 0;
  uint64_t psm = 0;               // program stream maps parsed
  uint64_t markers = 0;           // frame_end() calls (RTP markers)
  uint64_t marker_frames = 0;     // video AUs closed on a marker (not one frame late)
  uint64_t marker_mismatches = 0; // markers that did not fall on an AU boundary (then: Ignored)
};

// How the demuxer treats frame_end() on this stream (see the header comment).
enum class MarkerMode : uint8_t { Learning = 0, Trusted = 1, Ignored = 2 };
const char* to_string(MarkerMode m);

class PsDemuxer {
 public:
  // Frames go to a FrameSink (junction/media/frame.hpp), the view valid until the next call into
  // the demuxer; its error callback hears why something was dropped or refused (a PsError and a
  // detail, for a log line; rate-limit there): an object with on_frame(const FrameView&) and
  // on_error(PsError, const char*) is passed as it is.

  explicit PsDemuxer(const PsDemuxerConfig& cfg = {});

  // Consumes the chunk entirely; frames completed by it go to sink (zero or more).
  void feed(const uint8_t* data, size_t size, FrameSink sink);
  // The transport lost bytes before the next feed(): drop whatever is in progress, resync.
  void mark_loss(FrameSink sink);
  // The transport's frame boundary (the RTP marker) falls after the bytes fed so far: with a
  // trusted marker the AU in progress and the pending audio go out now.
  void frame_end(FrameSink sink);
  // End of input: emits the access unit in progress (if it is whole) and the pending audio.
  void flush(FrameSink sink);
  // Forget everything (a new source); the next frames carry JN_MF_DISCONT.
  void reset();

  // Hot reload: the whole parsing state (the frame in progress, the header being collected, codec
  // and timing, marker mode, counters) appended to out as an opaque, versioned blob, and taken
  // back by a demuxer of the same configuration (what the old plugin instance saved, the new one
  // restores): a frame whose bytes straddle the swap completes after it. restore() checks every
  // field against this demuxer's caps; on a blob it cannot take it returns false and the demuxer
  // is reset() (resyncs at the next pack header, as without a blob).
  void save(std::vector<uint8_t>& out) const;
  bool restore(const uint8_t* data, size_t size);

  const PsDemuxerStats& stats() const { return stats_; }
  PsError last_error() const { return last_error_; }
  // Codec of each track (JN_CODEC_NONE until the PSM or the data tells).
  uint32_t video_codec() const { return video_.codec; }
  uint32_t audio_codec() const { return audio_.codec; }
  MarkerMode marker_mode() const { return marker_mode_; }

 private:
  enum class State : uint8_t { Hunt, Header, Payload, Skip };

  static constexpr size_t kNoOffset = ~size_t{0};
  struct Video {
    uint32_t codec = 0;         // JN_CODEC_*; 0 = guess from the data
    bool codec_from_psm = false;
    bool unsupported = false;   // the PSM named a type that is not H.264/H.265: skip its PES
    uint8_t stream_id = 0;      // 0: the first 0xE0..0xEF seen
    std::vector<uint8_t> es;    // elementary stream since the current AU's first start code
    size_t scan = 0;            // next position to look for a start code
    bool in_au = false;         // es[0] starts an access unit
    bool has_vcl = false, key = false, has_sps = false, has_pps = false, has_vps = false;
    bool damaged = false;       // drop the AU in progress when it ends
    bool short_codes = false;   // some start code of the AU is 3 bytes: rewrite on output
    bool discont = true;
    int64_t au_pts = 0, au_dts = 0;
    bool au_has_pts = false;
    // PTS of the current PES: belongs to the first AU that starts in its payload.
    bool pes_pts_pending = false;
    int64_t pes_pts = 0, pes_dts = 0;
    size_t pes_start = 0;       // es offset where the current PES payload began
    int64_t last_pts = 0, last_dts = 0, last_delta = 0;
    bool have_last = false;
    uint32_t seq = 0;
    std::vector<uint8_t> params;  // last VPS/SPS/PPS NAL units, 4-byte start codes
    std::vector<uint8_t> out;     // rewritten AU (start codes / injected parameter sets)
    size_t marker_end = kNoOffset;  // Learning: es offset of the last marker (to be verified)
    bool after_marker = false;      // Trusted: an AU was closed on a marker; the next NAL must start one
  };
  struct Audio {
    uint32_t codec = 0;
    bool codec_from_psm = false;
    bool unsupported = false;
    bool overflow = false;      // drop the rest of the current PES
    uint8_t stream_id = 0;
    std::vector<uint8_t> buf;   // current PES payload (G.711) / ADTS bytes not yet framed (AAC)
    bool ready = false;         // G.711: buf holds a whole PES, emitted once the next start code checks out
    bool damaged = false;
    bool discont = true;
    int64_t pts = 0;            // 90 kHz, of buf's first frame (G.711)
    int64_t next_pts = 0;       // 90 kHz, where the next G.711 PES without a PTS starts
    bool has_pts = false;
    int64_t pes_pts = 0;        // AAC: 90 kHz PTS of the first ADTS frame starting at aac_pts_at
    size_t aac_pts_at = kNoOffset;
    uint32_t rate = 0;          // clock rate of the frames
    uint32_t seq = 0;
    uint8_t asc[2] = {0, 0};    // AAC AudioSpecificConfig last sent
    bool asc_sent = false;
    int64_t aac_next_pts = 0;   // in `rate` units, for the next ADTS frame of the PES
  };

  void error(const FrameSink& sink, PsError e, const char* detail);
  void lose_sync(const FrameSink& sink, PsError e, const char* detail);
  void hunt();
  void drop_in_progress(bool count);
  void parse_header(const FrameSink& sink);
  void begin_pes(const FrameSink& sink, const uint8_t* h, size_t len);
  void parse_psm(const FrameSink& sink, const uint8_t* h, size_t len);
  void set_video_type(const FrameSink& sink, uint8_t type);
  void set_audio_type(const FrameSink& sink, uint8_t type);
  void video_payload(const FrameSink& sink, const uint8_t* p, size_t n);
  void scan_video(const FrameSink& sink, bool at_end);
  bool guess_video_codec(const uint8_t* nal, size_t avail);
  void emit_video(const FrameSink& sink, size_t end);
  void check_marker(size_t sc, size_t cl, bool starts);
  void marker_mismatch();
  void audio_payload(const FrameSink& sink, const uint8_t* p, size_t n);
  void audio_pes_end(const FrameSink& sink);
  void guess_audio_codec(const FrameSink& sink);
  void emit_audio_pending(const FrameSink& sink);
  void parse_adts(const FrameSink& sink);
  int64_t unwrap(uint64_t pts33);

  PsDemuxerConfig cfg_;
  PsDemuxerStats stats_;
  PsError last_error_ = PsError::None;
  State state_ = State::Hunt;
  static constexpr size_t kMaxPsmLen = 1018;  // program_stream_map_length limit (2.5.4.2)
  static constexpr size_t kMaxParamBytes = 4096;
  uint8_t hdr_[6 + kMaxPsmLen];  // the header being collected (a PSM is the largest one kept)
  size_t hdr_len_ = 0;
  size_t hdr_need_ = 0;
  uint8_t hdr_phase_ = 0;
  size_t remain_ = 0;       // Payload / Skip bytes left
  uint8_t pes_kind_ = 0;    // 1 video, 2 audio (Payload state)
  uint32_t hunt_window_ = 0xFFFFFFFFu;  // last 4 bytes seen while hunting
  bool hunt_after_skip_ = false;  // Skip to the end of a damaged PES, then Hunt
  bool mpeg1_ = false;      // refusing an MPEG-1 stream until an MPEG-2 pack shows up
  bool seen_pack_ = false;
  int64_t last_pts90_ = 0;
  bool have_pts90_ = false;
  MarkerMode marker_mode_ = MarkerMode::Learning;
  uint32_t marker_agree_ = 0;  // Learning: markers in a row found on an AU boundary
  Video video_;
  Audio audio_;
};

}  // namespace junction::media
