#include "routing/call_event_abi.hpp"

#include <cstddef>

namespace junction {

namespace {

constexpr size_t kMaxStreams = 64;
constexpr size_t kMaxStringBytes = 16u << 20;  // a guard against garbage lengths

// Whether a struct the other side filled in, `size` bytes long, contains `field`.
#define JN_HAS_FIELD(size, type, field) \
  ((size) >= offsetof(type, field) + sizeof(static_cast<type*>(nullptr)->field))

bool read_str(const jn_str& in, std::string& out) {
  if (in.len == 0) {
    out.clear();
    return true;
  }
  if (!in.ptr || in.len > kMaxStringBytes) return false;
  out.assign(in.ptr, in.len);
  return true;
}

jn_status read_stream(const jn_media_stream& in, MediaStream& out) {
  const uint32_t size = in.struct_size;
  if (!JN_HAS_FIELD(size, jn_media_stream, kind)) return JN_ERR_ABI;
  out.kind = in.kind;
  bool ok = true;
  if (JN_HAS_FIELD(size, jn_media_stream, format)) ok &= read_str(in.format, out.format);
  if (JN_HAS_FIELD(size, jn_media_stream, payload_type)) out.payload_type = in.payload_type;
  if (JN_HAS_FIELD(size, jn_media_stream, clock_rate)) out.clock_rate = in.clock_rate;
  if (JN_HAS_FIELD(size, jn_media_stream, channels)) out.channels = in.channels;
  if (JN_HAS_FIELD(size, jn_media_stream, transport)) ok &= read_str(in.transport, out.transport);
  if (JN_HAS_FIELD(size, jn_media_stream, addr)) out.addr = in.addr;
  if (JN_HAS_FIELD(size, jn_media_stream, ssrc)) out.ssrc = in.ssrc;
  if (JN_HAS_FIELD(size, jn_media_stream, direction)) out.direction = in.direction;
  if (JN_HAS_FIELD(size, jn_media_stream, bus_stream))
    ok &= read_str(in.bus_stream, out.bus_stream);
  if (JN_HAS_FIELD(size, jn_media_stream, params)) ok &= read_str(in.params, out.params);
  return ok ? JN_OK : JN_ERR_INVALID;
}

jn_status read_media_impl(const jn_media_desc& in, std::vector<MediaStream>& out) {
  if (!JN_HAS_FIELD(in.struct_size, jn_media_desc, streams)) return JN_ERR_ABI;
  if (in.count > kMaxStreams) return JN_ERR_INVALID;
  if (in.count > 0 && !in.streams) return JN_ERR_INVALID;
  out.resize(in.count);
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
  const uint32_t size = in.struct_size;
  if (!JN_HAS_FIELD(size, jn_call_event, type)) return JN_ERR_ABI;
  out.type = in.type;
  bool ok = true;
  if (JN_HAS_FIELD(size, jn_call_event, call_id)) ok &= read_str(in.call_id, out.call_id);
  if (JN_HAS_FIELD(size, jn_call_event, from)) ok &= read_str(in.from, out.from);
  if (JN_HAS_FIELD(size, jn_call_event, to)) ok &= read_str(in.to, out.to);
  if (JN_HAS_FIELD(size, jn_call_event, target)) ok &= read_str(in.target, out.target);
  if (JN_HAS_FIELD(size, jn_call_event, media) && in.media) {
    out.media.emplace();
    if (jn_status s = read_media_impl(*in.media, *out.media); s != JN_OK) {
      out = CallEvent{};
      return s;
    }
  }
  if (JN_HAS_FIELD(size, jn_call_event, code)) out.code = in.code;
  if (JN_HAS_FIELD(size, jn_call_event, reason)) ok &= read_str(in.reason, out.reason);
  if (JN_HAS_FIELD(size, jn_call_event, dtmf)) ok &= read_str(in.dtmf, out.dtmf);
  if (JN_HAS_FIELD(size, jn_call_event, info_type)) ok &= read_str(in.info_type, out.info_type);
  if (JN_HAS_FIELD(size, jn_call_event, info_body)) ok &= read_str(in.info_body, out.info_body);
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

#undef JN_HAS_FIELD

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
  abi_.media = nullptr;
  if (!event_.media) return;

  streams_.reserve(event_.media->size());  // no reallocation: stream_ptrs_ point into it
  for (const MediaStream& m : *event_.media) {
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
