// FLV reader: an FLV byte stream (a .flv file, an HTTP-FLV response body) -> junction::media
// frames, the inverse of flv.hpp's muxer (Adobe Flash Video File Format Specification v10.1,
// annex E).
//
//   - File header ("FLV" 1 flags DataOffset) and PreviousTagSize0, then tags (11-byte header,
//     body, PreviousTagSize). Bytes arrive in any pieces: a tag is handed on once it is whole.
//   - Video: H.264 (CodecID 7). The AVC sequence header's AVCDecoderConfigurationRecord gives
//     the SPS/PPS and the NAL length size; each AVC NALU tag becomes one Annex-B access unit
//     (00 00 00 01 before every NAL unit). A keyframe is preceded in the same frame by the SPS
//     and PPS (JN_MF_KEY | JN_MF_CONFIG), as media_frame.h asks. dts = tag time, pts = dts +
//     CompositionTime, clock 90000. End-of-sequence tags are skipped.
//   - Audio: G.711 A-law (SoundFormat 7) / mu-law (8): the bytes as they are, clock 8000 (one
//     byte per sample). AAC (10): the AudioSpecificConfig as a JN_MF_CONFIG frame, raw access
//     units after it, clock = the config's sampling rate; passed through with the codec named
//     (a consumer that cannot take AAC refuses it).
//   - Script data (onMetaData) is skipped. Other video / audio codecs: the track is skipped and
//     reported once through the sink's error (the other track goes on).
//   - Anything malformed (a bad signature, a tag larger than max_tag_bytes, a NAL length past its
//     tag, a bad decoder config, a PreviousTagSize that does not match) fails the reader: it
//     reports why once and reads nothing more (the owner ends the stream).
//
// Memory: the partial-tag buffer and the output frame are grown once up to the largest tag
// (bounded by max_tag_bytes) and reused; nothing is allocated per tag after that. Never throws.
#pragma once

#include <junction/media/frame.hpp>
#include <junction/rtmp/flv.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace junction::rtmp::flv {

enum class ReadError : int {
  kNone = 0,
  kBadHeader,         // not "FLV" version 1, or a DataOffset under 9
  kTagTooLarge,       // a tag body over max_tag_bytes
  kBadPrevTagSize,    // PreviousTagSize differs from the tag just read
  kBadTag,            // a tag too short for its own headers, an unknown tag type
  kBadAvcConfig,      // an AVCDecoderConfigurationRecord that does not parse
  kBadNalu,           // a NAL length past the end of its tag, a NALU before any config
  kUnsupportedCodec,  // a video / audio codec this reader does not carry (not fatal)
};
const char* to_string(ReadError e);

struct ReaderConfig {
  size_t max_tag_bytes = 4u << 20;  // bigger tags fail the stream (a bound on buffered bytes)
  bool check_prev_tag_size = true;  // some muxers write garbage there; off: ignored
};

class Reader {
 public:
  explicit Reader(ReaderConfig cfg = {}) : cfg_(cfg) {}

  // Consumes n bytes; hands each whole frame to sink (the view's bytes valid during the call
  // only) and reports problems through sink.fail(int(ReadError), detail). Returns false once the
  // reader has failed (then and forever after: call error() for why).
  bool feed(const uint8_t* p, size_t n, media::FrameSink sink);

  bool failed() const { return error_ != ReadError::kNone; }
  ReadError error() const { return error_; }
  const char* error_detail() const { return detail_; }

  // What the stream said so far.
  bool has_video_config() const { return !sps_.empty() && !pps_.empty(); }
  uint32_t audio_codec() const { return audio_codec_; }  // JN_CODEC_* of the last audio tag, 0 before
  uint64_t tags() const { return tags_; }
  uint64_t video_frames() const { return video_seq_; }
  uint64_t audio_frames() const { return audio_seq_; }
  // Bytes held for an unfinished tag (bounded by 11 + max_tag_bytes + 4).
  size_t buffered() const { return buf_.size(); }

 private:
  enum class State { kHeader, kSkipHeader, kTags };
  bool fail(ReadError e, const char* detail, media::FrameSink& sink);
  // Consumes whole units from p (returns bytes used; 0 when more bytes are needed).
  size_t step(const uint8_t* p, size_t n, media::FrameSink& sink);
  bool on_tag(uint8_t type, uint32_t ts, const uint8_t* body, size_t len, media::FrameSink& sink);
  bool on_video(uint32_t ts, const uint8_t* body, size_t len, media::FrameSink& sink);
  bool on_audio(uint32_t ts, const uint8_t* body, size_t len, media::FrameSink& sink);

  ReaderConfig cfg_;
  State state_ = State::kHeader;
  size_t skip_ = 0;           // header bytes past the 9 still to skip (DataOffset > 9)
  std::vector<uint8_t> buf_;  // a unit that arrived in pieces
  std::vector<uint8_t> out_;  // the Annex-B frame being built
  std::vector<uint8_t> sps_, pps_;
  uint8_t nal_len_size_ = 4;
  uint32_t audio_codec_ = 0;
  uint32_t aac_rate_ = 0;
  uint32_t video_seq_ = 0, audio_seq_ = 0;
  uint64_t tags_ = 0;
  bool warned_video_ = false, warned_audio_ = false;
  ReadError error_ = ReadError::kNone;
  const char* detail_ = "";
};

}  // namespace junction::rtmp::flv
