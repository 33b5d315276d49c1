#include "routing/call_event_abi.hpp"

#include <cstddef>

namespace junction {

namespace {

constexpr size_t kMaxStreams = 64;
constexpr size_t kMaxListItems = 256;          // codecs, candidates, crypto lines, headers
constexpr size_t kMaxStringBytes = 16u << 20;  // a guard against garbage lengths

bool read_str(const jn_str& in, std::string& out) {
  if (in.len == 0) {
    out.clear();
    return true;
  }
  if (!in.ptr || in.len > kMaxStringBytes) return false;
  out.assign(in.ptr, in.len);
  return true;
}

bool read_strs(const jn_str* in, uint32_t count, std::vector<std::string>& out) {
  out.clear();
  if (count == 0) return true;
  if (!in || count > kMaxListItems) return false;
  out.resize(count);
  for (uint32_t i = 0; i < count; ++i)
    if (!read_str(in[i], out[i])) return false;
  return true;
}

bool read_headers(const jn_header* in, uint32_t count, Headers& out) {
  out.clear();
  if (count == 0) return true;
  if (!in || count > kMaxListItems) return false;
  out.resize(count);
  for (uint32_t i = 0; i < count; ++i)
    if (!read_str(in[i].name, out[i].first) || out[i].first.empty() || !read_str(in[i].value, out[i].second)) return false;
  return true;
}

bool read_codecs(const jn_codec* in, uint32_t count, std::vector<Codec>& out) {
  out.clear();
  if (count == 0) return true;
  if (!in || count > kMaxListItems) return false;
  out.resize(count);
  for (uint32_t i = 0; i < count; ++i) {
    Codec& c = out[i];
    if (!read_str(in[i].name, c.name) || c.name.empty() || !read_str(in[i].fmtp, c.fmtp) || !read_str(in[i].rtcp_fb, c.rtcp_fb))
      return false;
    c.payload_type = in[i].payload_type;
    c.clock_rate = in[i].clock_rate;
    c.channels = in[i].channels;
  }
  return true;
}

jn_status read_stream(const jn_media_stream& in, MediaStream& out) {
  const jn_media_stream* p = &in;
  if (!JN_HAS_FIELD(p, jn_media_stream, kind)) return JN_ERR_ABI;
  out.kind = in.kind;
  bool ok = true;
  if (JN_HAS_FIELD(p, jn_media_stream, format)) ok &= read_str(in.format, out.format);
  if (JN_HAS_FIELD(p, jn_media_stream, payload_type)) out.payload_type = in.payload_type;
  if (JN_HAS_FIELD(p, jn_media_stream, clock_rate)) out.clock_rate = in.clock_rate;
  if (JN_HAS_FIELD(p, jn_media_stream, channels)) out.channels = in.channels;
  if (JN_HAS_FIELD(p, jn_media_stream, transport)) ok &= read_str(in.transport, out.transport);
  if (JN_HAS_FIELD(p, jn_media_stream, addr)) out.addr = in.addr;
  if (JN_HAS_FIELD(p, jn_media_stream, ssrc)) out.ssrc = in.ssrc;
  if (JN_HAS_FIELD(p, jn_media_stream, direction)) out.direction = in.direction;
  if (JN_HAS_FIELD(p, jn_media_stream, bus_stream)) ok &= read_str(in.bus_stream, out.bus_stream);
  if (JN_HAS_FIELD(p, jn_media_stream, params)) ok &= read_str(in.params, out.params);
  if (JN_HAS_FIELD(p, jn_media_stream, codec_count)) ok &= read_codecs(in.codecs, in.codec_count, out.codecs);
  if (JN_HAS_FIELD(p, jn_media_stream, setup)) out.setup = in.setup;
  if (JN_HAS_FIELD(p, jn_media_stream, flags)) out.flags = in.flags;
  if (JN_HAS_FIELD(p, jn_media_stream, rtcp_addr)) out.rtcp_addr = in.rtcp_addr;
  if (JN_HAS_FIELD(p, jn_media_stream, mid)) ok &= read_str(in.mid, out.mid);
  if (JN_HAS_FIELD(p, jn_media_stream, ice_ufrag)) ok &= read_str(in.ice_ufrag, out.ice_ufrag);
  if (JN_HAS_FIELD(p, jn_media_stream, ice_pwd)) ok &= read_str(in.ice_pwd, out.ice_pwd);
  if (JN_HAS_FIELD(p, jn_media_stream, candidate_count)) ok &= read_strs(in.candidates, in.candidate_count, out.candidates);
  if (JN_HAS_FIELD(p, jn_media_stream, fingerprint)) ok &= read_str(in.fingerprint, out.fingerprint);
  if (JN_HAS_FIELD(p, jn_media_stream, crypto)) ok &= read_strs(in.crypto, in.crypto_count, out.crypto);
  if (!ok) return JN_ERR_INVALID;
  if (out.setup > JN_SETUP_HOLDCONN || out.direction > JN_DIR_INACTIVE) return JN_ERR_INVALID;
  // One truth for the chosen codec: the first listed one, or the single-codec fields alone.
  if (!out.codecs.empty()) {
    const Codec& first = out.codecs.front();
    out.format = first.name;
    out.payload_type = first.payload_type;
    out.clock_rate = first.clock_rate;
    out.channels = first.channels;
  }
  return JN_OK;
}

jn_status read_media_impl(const jn_media_desc& in, std::vector<MediaStream>& out) {
  if (!JN_HAS_FIELD(&in, jn_media_desc, streams)) return JN_ERR_ABI;
  if (in.count > kMaxStreams) return JN_ERR_INVALID;
  if (in.count > 0 && !in.streams) return JN_ERR_INVALID;
  out.assign(in.count, MediaStream{});  // fields a shorter struct lacks keep their defaults
  for (uint32_t i = 0; i < in.count; ++i) {
    if (!in.streams[i]) return JN_ERR_INVALID;
    if (jn_status s = read_stream(*in.streams[i], out[i]); s != JN_OK) return s;
  }
  return JN_OK;
}

jn_str view(const std::string& s) { return jn_str{s.data(), s.size()}; }

}  // namespace

jn_status from_abi(const jn_call_event& in, CallEvent& out) {
  out = CallEvent{};
  const jn_call_event* p = &in;
  if (!JN_HAS_FIELD(p, jn_call_event, type)) return JN_ERR_ABI;
  out.type = in.type;
  bool ok = true;
  if (JN_HAS_FIELD(p, jn_call_event, call_id)) ok &= read_str(in.call_id, out.call_id);
  if (JN_HAS_FIELD(p, jn_call_event, from)) ok &= read_str(in.from, out.from);
  if (JN_HAS_FIELD(p, jn_call_event, to)) ok &= read_str(in.to, out.to);
  if (JN_HAS_FIELD(p, jn_call_event, target)) ok &= read_str(in.target, out.target);
  if (JN_HAS_FIELD(p, jn_call_event, media) && in.media) {
    out.media.emplace();
    if (jn_status s = read_media_impl(*in.media, *out.media); s != JN_OK) {
      out = CallEvent{};
      return s;
    }
  }
  if (JN_HAS_FIELD(p, jn_call_event, code)) out.code = in.code;
  if (JN_HAS_FIELD(p, jn_call_event, reason)) ok &= read_str(in.reason, out.reason);
  if (JN_HAS_FIELD(p, jn_call_event, dtmf)) ok &= read_str(in.dtmf, out.dtmf);
  if (JN_HAS_FIELD(p, jn_call_event, info_type)) ok &= read_str(in.info_type, out.info_type);
  if (JN_HAS_FIELD(p, jn_call_event, info_body)) ok &= read_str(in.info_body, out.info_body);
  if (JN_HAS_FIELD(p, jn_call_event, from_name)) ok &= read_str(in.from_name, out.from_name);
  if (JN_HAS_FIELD(p, jn_call_event, header_count)) ok &= read_headers(in.headers, in.header_count, out.headers);
  if (!ok) {
    out = CallEvent{};
    return JN_ERR_INVALID;
  }
  return JN_OK;
}

CallEvent from_abi(const jn_call_event& in) {
  CallEvent out;
  if (from_abi(in, out) != JN_OK) out = CallEvent{};
  return out;
}

AbiCallEvent::AbiCallEvent(const CallEvent& ev) : event_(ev) { build(); }
AbiCallEvent::AbiCallEvent(CallEvent&& ev) : event_(std::move(ev)) { build(); }

void AbiCallEvent::build() {
  abi_.struct_size = sizeof(jn_call_event);
  abi_.type = event_.type;
  abi_.call_id = view(event_.call_id);
  abi_.from = view(event_.from);
  abi_.to = view(event_.to);
  abi_.target = view(event_.target);
  abi_.code = event_.code;
  abi_.reason = view(event_.reason);
  abi_.dtmf = view(event_.dtmf);
  abi_.info_type = view(event_.info_type);
  abi_.info_body = view(event_.info_body);
  abi_.from_name = view(event_.from_name);
  headers_.clear();
  for (const auto& [name, value] : event_.headers) headers_.push_back({view(name), view(value)});
  abi_.headers = headers_.empty() ? nullptr : headers_.data();
  abi_.header_count = static_cast<uint32_t>(headers_.size());
  abi_.media = nullptr;
  if (!event_.media) return;

  // No reallocation after this point: the pointers handed out point into these vectors.
  streams_.reserve(event_.media->size());
  codecs_.resize(event_.media->size());
  strs_.resize(event_.media->size());
  for (size_t i = 0; i < event_.media->size(); ++i) {
    const MediaStream& m = (*event_.media)[i];
    jn_media_stream s{};
    s.struct_size = sizeof(jn_media_stream);
    s.kind = m.kind;
    s.format = view(m.format);
    s.payload_type = m.payload_type;
    s.clock_rate = m.clock_rate;
    s.channels = m.channels;
    s.transport = view(m.transport);
    s.addr = m.addr;
    s.ssrc = m.ssrc;
    s.direction = m.direction;
    s.bus_stream = view(m.bus_stream);
    s.params = view(m.params);
    for (const Codec& c : m.codecs) {
      jn_codec jc{};
      jc.name = view(c.name);
      jc.payload_type = c.payload_type;
      jc.clock_rate = c.clock_rate;
      jc.channels = c.channels;
      jc.fmtp = view(c.fmtp);
      jc.rtcp_fb = view(c.rtcp_fb);
      codecs_[i].push_back(jc);
    }
    s.codecs = codecs_[i].empty() ? nullptr : codecs_[i].data();
    s.codec_count = static_cast<uint32_t>(codecs_[i].size());
    s.setup = m.setup;
    s.flags = m.flags;
    s.rtcp_addr = m.rtcp_addr;
    s.mid = view(m.mid);
    s.ice_ufrag = view(m.ice_ufrag);
    s.ice_pwd = view(m.ice_pwd);
    s.fingerprint = view(m.fingerprint);
    // candidates then crypto lines, in one array per stream
    strs_[i].reserve(m.candidates.size() + m.crypto.size());
    for (const std::string& c : m.candidates) strs_[i].push_back(view(c));
    for (const std::string& c : m.crypto) strs_[i].push_back(view(c));
    s.candidates = m.candidates.empty() ? nullptr : strs_[i].data();
    s.candidate_count = static_cast<uint32_t>(m.candidates.size());
    s.crypto = m.crypto.empty() ? nullptr : strs_[i].data() + m.candidates.size();
    s.crypto_count = static_cast<uint32_t>(m.crypto.size());
    streams_.push_back(s);
  }
  for (const jn_media_stream& s : streams_) stream_ptrs_.push_back(&s);
  desc_.struct_size = sizeof(jn_media_desc);
  desc_.count = static_cast<uint32_t>(streams_.size());
  desc_.streams = stream_ptrs_.empty() ? nullptr : stream_ptrs_.data();
  abi_.media = &desc_;
}

jn_status read_media(const jn_media_desc& in, std::vector<MediaStream>& out) { return read_media_impl(in, out); }

}  // namespace junction
