// MANSRTSP (GB/T 28181 附录 B): the playback control carried in INFO bodies
// (Content-Type: Application/MANSRTSP): PLAY (Scale, Range npt), PAUSE (PauseTime), TEARDOWN,
// and the device's "MANSRTSP/1.0 200 OK" answers. Builders for what the platform sends, parsers
// for what devices and SIP clients (the B2BUA flow) send.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gb::play {

inline constexpr std::string_view kMansrtspType = "Application/MANSRTSP";

enum class RtspMethod { Play, Pause, Teardown };

struct RtspRequest {
  RtspMethod method = RtspMethod::Play;
  uint32_t cseq = 1;
  std::optional<double> scale;          // PLAY: 0.25 .. 32 (negative: reverse, as some devices do)
  std::optional<double> range_start;    // PLAY: npt seconds from the recording's start (none: "now")
  std::optional<double> range_end;      // PLAY: npt end (none: open)
  bool range_given = false;             // PLAY carried a Range (npt=now- when range_start is empty)
  std::string pause_time = "now";       // PAUSE: PauseTime
};

// The INFO body; std::nullopt when a value cannot be expressed (scale 0, NaN, a start after the end).
std::optional<std::string> build_rtsp(const RtspRequest& r, std::string& error);
std::optional<RtspRequest> parse_rtsp_request(std::string_view body, std::string& error);

struct RtspResponse {
  int status = 0;
  std::string reason;
  uint32_t cseq = 0;
  std::string rtp_info;   // RTP-Info as given (seq=..;rtptime=..)
};
std::optional<RtspResponse> parse_rtsp_response(std::string_view body, std::string& error);
std::string build_rtsp_response(int status, std::string_view reason, uint32_t cseq);

std::string_view rtsp_method_name(RtspMethod m);

}  // namespace gb::play
