// FLV tags (Adobe Flash Video File Format Specification v10.1, annex E) built from junction::media
// frames. The tag *bodies* are what RTMP audio (type 8) / video (type 9) / data (type 18) messages
// carry; file_header/file_tag
// write the same tags as a .flv file.
//
// Video: H.264 only (CodecID 7). An AVC sequence header (AVCPacketType 0) holds the
// AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.2.4.1) built from one SPS and one PPS; an
// AVC NALU tag (AVCPacketType 1) holds one access unit as 4-byte length-prefixed NAL units
// (Annex-B start codes replaced; AUD, SPS and PPS left out: they travel in the sequence header)
// with its composition time (pts - dts, ms). Audio: G.711 A-law (SoundFormat 7), mu-law (8), 8 kHz
// mono as one byte per sample, and AAC (10: AACPacketType 0 carries the AudioSpecificConfig, 1 a
// raw access unit).
//
// Builders append to a caller-owned vector (reused by the caller: no allocation once it has grown
// to the largest frame) and never throw; false means the input cannot be expressed (a reason in
// *error, a static string).
#pragma once

#include <junction/media/frame.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace junction::rtmp::flv {

enum TagType : uint8_t { kAudio = 8, kVideo = 9, kScript = 18 };
enum SoundFormat : uint8_t { kPcmAlaw = 7, kPcmUlaw = 8, kAac = 10 };
enum VideoCodec : uint8_t { kAvc = 7 };

// The AVCDecoderConfigurationRecord for one SPS and one PPS (NAL units without start codes):
// 01 profile compat level FF E1 len(SPS) SPS 01 len(PPS) PPS. False for an SPS under 4 bytes.
bool avc_decoder_config(std::span<const uint8_t> sps, std::span<const uint8_t> pps,
                        std::vector<uint8_t>& out, const char** error);

// Video tag body: AVC sequence header (17 00 00 00 00 + record).
bool avc_sequence_header(std::span<const uint8_t> sps, std::span<const uint8_t> pps,
                         std::vector<uint8_t>& out, const char** error);
// Video tag body: AVC NALU (17|27 01 cts24) + the access unit's NAL units, length-prefixed.
// annexb is one access unit with start codes; cts_ms is pts - dts (may be negative, 24-bit
// signed). Appends nothing and returns false when no NAL unit is left to send.
bool avc_nalu(const uint8_t* annexb, size_t len, bool keyframe, int32_t cts_ms, std::vector<uint8_t>& out,
              const char** error);
// The 5 bytes avc_nalu starts with (17|27 01 cts24), for a body written in pieces (the
// publisher's, straight into the chunk stream); false when cts_ms is out of the 24-bit range.
bool avc_nalu_header(bool keyframe, int32_t cts_ms, uint8_t out[5], const char** error);
// Whether a NAL unit of this type goes in an AVC NALU body (not SPS / PPS: the sequence header
// carries them; not an AUD: AVCC samples have none).
inline bool avc_nalu_carries(uint8_t nal_type) { return nal_type != 7 && nal_type != 8 && nal_type != 9; }
// Video tag body: AVC end of sequence (17 02 00 00 00).
void avc_end_of_sequence(std::vector<uint8_t>& out);

// Audio tag header byte for a JN_CODEC_* (PCMA 0x72, PCMU 0x82, AAC 0xAF); 0 for any other codec.
uint8_t audio_header(uint32_t codec);
// Audio tag body: header byte (+ AACPacketType for AAC: 1) + the frame's bytes.
bool audio_frame(uint32_t codec, const uint8_t* data, size_t len, std::vector<uint8_t>& out, const char** error);
// Audio tag body: AAC sequence header (AF 00 + AudioSpecificConfig).
bool aac_sequence_header(std::span<const uint8_t> asc, std::vector<uint8_t>& out, const char** error);

// What onMetaData announces (zero / empty: left out).
struct Metadata {
  uint32_t video_codec = 0;  // JN_CODEC_H264 -> videocodecid 7
  uint32_t audio_codec = 0;  // JN_CODEC_PCMA/PCMU/AAC -> audiocodecid 7/8/10
  uint32_t width = 0, height = 0;
  double framerate = 0;
  uint32_t audio_sample_rate = 0;  // Hz
  uint32_t audio_channels = 0;
  std::string encoder = "Junction";
};
// Script data body: "onMetaData" + ECMA array. with_set_data_frame prefixes "@setDataFrame" (the
// form a publisher sends over RTMP; the server strips it and stores the rest).
void metadata(const Metadata& m, bool with_set_data_frame, std::vector<uint8_t>& out);

// An FLV file: file_header ("FLV" 1 flags 00000009, PreviousTagSize0 = 0), then file_tag per tag
// (11-byte tag header, body, PreviousTagSize). Append to out; the caller writes it to its file.
void file_header(bool has_audio, bool has_video, std::vector<uint8_t>& out);
// One tag with a body from the builders above; timestamp in ms (32 bits: TimestampExtended).
void file_tag(TagType type, uint32_t timestamp_ms, std::span<const uint8_t> body, std::vector<uint8_t>& out);

}  // namespace junction::rtmp::flv
