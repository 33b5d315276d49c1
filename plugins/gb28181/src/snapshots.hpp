// Snapshots (图像抓拍): the platform hands a device an UploadURL with a SessionID (DeviceConfig
// SnapShotConfig); the device uploads its JPEGs there over HTTP. The upload endpoint runs on the
// core's HTTP service (conf snapshot_listen); images are kept in the core's store (SQLite under
// the state dir), keyed snap/<device>/<session>/<file>. Only sessions the platform opened are
// accepted (the SessionID is the capability), each for snapshot_session_ttl_s and at most
// SnapNum (<= 10) files.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace gb {

// Path "/snapshot/<device>/<session>[/<file>]" -> its parts; false when it is not one.
bool parse_snapshot_path(std::string_view path, std::string& device, std::string& session, std::string& file);
// A session ID as the document allows: 32..128 of [A-Za-z0-9-].
bool valid_session_id(std::string_view s);
// A file name for the store: [A-Za-z0-9._-]{1,64}, not starting with '.'.
bool valid_file_name(std::string_view s);
// The image of an upload: the body itself (image/jpeg, application/octet-stream) or the first
// file part of a multipart/form-data body. Empty with error set when there is none.
std::string_view upload_image(std::string_view body, std::string_view content_type, std::string& error,
                              std::string* part_filename = nullptr);
inline bool is_jpeg(std::string_view b) {
  return b.size() >= 4 && static_cast<unsigned char>(b[0]) == 0xFF && static_cast<unsigned char>(b[1]) == 0xD8;
}

}  // namespace gb
