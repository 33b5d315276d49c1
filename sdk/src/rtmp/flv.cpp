// FLV tag bodies and file framing (junction/rtmp/flv.hpp).
#include <junction/rtmp/amf0.hpp>
#include <junction/rtmp/flv.hpp>

#include <junction/media/annexb.hpp>

namespace junction::rtmp::flv {

namespace {

void put_u16(std::vector<uint8_t>& out, uint32_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}
void put_u24(std::vector<uint8_t>& out, uint32_t v) {
  out.push_back(static_cast<uint8_t>(v >> 16));
  put_u16(out, v);
}
void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  out.push_back(static_cast<uint8_t>(v >> 24));
  put_u24(out, v);
}

}  // namespace

bool avc_decoder_config(std::span<const uint8_t> sps, std::span<const uint8_t> pps, std::vector<uint8_t>& out,
                        const char** error) {
  if (sps.size() < 4) {
    *error = "SPS shorter than 4 bytes";
    return false;
  }
  if (sps.size() > 0xFFFF || pps.size() > 0xFFFF || pps.empty()) {
    *error = "SPS or PPS size out of range";
    return false;
  }
  out.push_back(1);       // configurationVersion
  out.push_back(sps[1]);  // AVCProfileIndication
  out.push_back(sps[2]);  // profile_compatibility
  out.push_back(sps[3]);  // AVCLevelIndication
  out.push_back(0xFF);    // 6 reserved bits + lengthSizeMinusOne = 3 (4-byte NAL lengths)
  out.push_back(0xE1);    // 3 reserved bits + numOfSequenceParameterSets = 1
  put_u16(out, static_cast<uint32_t>(sps.size()));
  out.insert(out.end(), sps.begin(), sps.end());
  out.push_back(1);  // numOfPictureParameterSets
  put_u16(out, static_cast<uint32_t>(pps.size()));
  out.insert(out.end(), pps.begin(), pps.end());
  return true;
}

bool avc_sequence_header(std::span<const uint8_t> sps, std::span<const uint8_t> pps, std::vector<uint8_t>& out,
                         const char** error) {
  size_t start = out.size();
  out.insert(out.end(), {0x17, 0x00, 0x00, 0x00, 0x00});  // keyframe | AVC, sequence header, cts 0
  if (!avc_decoder_config(sps, pps, out, error)) {
    out.resize(start);
    return false;
  }
  return true;
}

bool avc_nalu(const uint8_t* annexb, size_t len, bool keyframe, int32_t cts_ms, std::vector<uint8_t>& out,
              const char** error) {
  uint8_t head[5];
  if (!avc_nalu_header(keyframe, cts_ms, head, error)) return false;
  size_t start = out.size();
  out.insert(out.end(), head, head + 5);
  size_t nals = 0;
  namespace h264 = media::annexb::h264;
  media::annexb::for_each_nal(annexb, len, [&](const uint8_t* nal, size_t n) {
    if (!avc_nalu_carries(h264::type(nal[0]))) return true;
    put_u32(out, static_cast<uint32_t>(n));
    out.insert(out.end(), nal, nal + n);
    ++nals;
    return true;
  });
  if (nals == 0) {
    out.resize(start);
    *error = "no NAL unit to send in the access unit";
    return false;
  }
  return true;
}

bool avc_nalu_header(bool keyframe, int32_t cts_ms, uint8_t out[5], const char** error) {
  if (cts_ms < -(1 << 23) || cts_ms >= (1 << 23)) {
    *error = "composition time out of the 24-bit range";
    return false;
  }
  auto c = static_cast<uint32_t>(cts_ms) & 0xFFFFFF;
  out[0] = keyframe ? 0x17 : 0x27;
  out[1] = 1;  // AVC NALU
  out[2] = static_cast<uint8_t>(c >> 16), out[3] = static_cast<uint8_t>(c >> 8), out[4] = static_cast<uint8_t>(c);
  return true;
}

void avc_end_of_sequence(std::vector<uint8_t>& out) { out.insert(out.end(), {0x17, 0x02, 0x00, 0x00, 0x00}); }

uint8_t audio_header(uint32_t codec) {
  // SoundFormat << 4 | SoundRate << 2 | SoundSize << 1 | SoundType. G.711 is 8 kHz mono whatever
  // the rate bits say (readers take 8 kHz for formats 7/8); ffmpeg writes rate 0, 16-bit, mono.
  // AAC: the spec fixes 44 kHz, 16-bit, stereo; the real values are in the AudioSpecificConfig.
  switch (codec) {
    case JN_CODEC_PCMA: return kPcmAlaw << 4 | 0 << 2 | 1 << 1 | 0;
    case JN_CODEC_PCMU: return kPcmUlaw << 4 | 0 << 2 | 1 << 1 | 0;
    case JN_CODEC_AAC: return kAac << 4 | 3 << 2 | 1 << 1 | 1;
    default: return 0;
  }
}

bool audio_frame(uint32_t codec, const uint8_t* data, size_t len, std::vector<uint8_t>& out, const char** error) {
  uint8_t h = audio_header(codec);
  if (!h) {
    *error = "audio codec not carried in FLV by this muxer (PCMA, PCMU, AAC are)";
    return false;
  }
  if (len == 0) {
    *error = "empty audio frame";
    return false;
  }
  out.push_back(h);
  if (codec == JN_CODEC_AAC) out.push_back(1);  // AAC raw
  out.insert(out.end(), data, data + len);
  return true;
}

bool aac_sequence_header(std::span<const uint8_t> asc, std::vector<uint8_t>& out, const char** error) {
  if (asc.size() < 2) {
    *error = "AudioSpecificConfig shorter than 2 bytes";
    return false;
  }
  out.push_back(audio_header(JN_CODEC_AAC));
  out.push_back(0);  // AAC sequence header
  out.insert(out.end(), asc.begin(), asc.end());
  return true;
}

void metadata(const Metadata& m, bool with_set_data_frame, std::vector<uint8_t>& out) {
  if (with_set_data_frame) amf0::put_string(out, "@setDataFrame");
  amf0::put_string(out, "onMetaData");
  uint32_t count = 0;
  uint8_t vcodec = m.video_codec == JN_CODEC_H264 ? kAvc : 0;
  uint8_t acodec = audio_header(m.audio_codec) >> 4;
  count += vcodec ? 1 : 0;
  count += acodec ? 1 : 0;
  count += m.width ? 1 : 0;
  count += m.height ? 1 : 0;
  count += m.framerate > 0 ? 1 : 0;
  count += m.audio_sample_rate ? 1 : 0;
  count += m.audio_channels ? 2 : 0;
  count += m.encoder.empty() ? 0 : 1;
  amf0::put_ecma_array_begin(out, count);
  auto num = [&](std::string_view k, double v) {
    amf0::put_key(out, k);
    amf0::put_number(out, v);
  };
  if (vcodec) num("videocodecid", vcodec);
  if (m.width) num("width", m.width);
  if (m.height) num("height", m.height);
  if (m.framerate > 0) num("framerate", m.framerate);
  if (acodec) num("audiocodecid", acodec);
  if (m.audio_sample_rate) num("audiosamplerate", m.audio_sample_rate);
  if (m.audio_channels) {
    amf0::put_key(out, "stereo");
    amf0::put_boolean(out, m.audio_channels > 1);
    num("audiochannels", m.audio_channels);
  }
  if (!m.encoder.empty()) {
    amf0::put_key(out, "encoder");
    amf0::put_string(out, m.encoder);
  }
  amf0::put_object_end(out);
}

void file_header(bool has_audio, bool has_video, std::vector<uint8_t>& out) {
  out.insert(out.end(), {'F', 'L', 'V', 1});
  out.push_back(static_cast<uint8_t>((has_audio ? 4 : 0) | (has_video ? 1 : 0)));
  put_u32(out, 9);  // DataOffset: the header's size
  put_u32(out, 0);  // PreviousTagSize0
}

void file_tag(TagType type, uint32_t timestamp_ms, std::span<const uint8_t> body, std::vector<uint8_t>& out) {
  out.push_back(type);
  put_u24(out, static_cast<uint32_t>(body.size()));
  put_u24(out, timestamp_ms & 0xFFFFFF);
  out.push_back(static_cast<uint8_t>(timestamp_ms >> 24));  // TimestampExtended
  put_u24(out, 0);                                          // StreamID
  out.insert(out.end(), body.begin(), body.end());
  put_u32(out, static_cast<uint32_t>(11 + body.size()));
}

}  // namespace junction::rtmp::flv
