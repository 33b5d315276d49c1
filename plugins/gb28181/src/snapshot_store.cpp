// Snapshot upload sessions and images in the core's store (see snapshots.hpp): the HTTP upload
// endpoint, the session a SnapShotConfig opens, and the admin verbs to list and fetch images.
#include "plugin.hpp"
#include "snapshots.hpp"
#include "timefmt.hpp"

#include <junction/util/addr.hpp>
#include <junction/util/encoding.hpp>
#include <junction/util/random.hpp>

namespace gb {

using nlohmann::json;
using junction::sdk::to_sv;

namespace {
std::string session_key(const std::string& dev, const std::string& sid) { return "snapsess/" + dev + "/" + sid; }
}  // namespace

bool GbPlugin::open_snapshot_session(const std::string& device, junction::gb::SnapShotConfig& sc, std::string& error) {
  if (sc.session_id.empty()) {
    if (!junction::util::random_hex(16, sc.session_id)) {
      error = "no randomness for a SessionID";
      return false;
    }
  }
  if (!valid_session_id(sc.session_id)) {
    error = "session_id must be 32..128 of [A-Za-z0-9-]";
    return false;
  }
  if (sc.upload_url.empty()) {
    if (conf_.snapshot_url.empty()) {
      error = "upload_url is required (or set snapshot_listen: the platform's own upload endpoint)";
      return false;
    }
    sc.upload_url = conf_.snapshot_url + "/snapshot/" + device + "/" + sc.session_id;
  }
  int64_t until = wall_ms() / 1000 + conf_.snapshot_session_ttl_s;
  host().kv_put(session_key(device, sc.session_id),
                json{{"until", until}, {"snap_num", std::clamp(sc.snap_num, 1, 10)}, {"stored", 0}}.dump());
  return true;
}

void GbPlugin::on_http(const jn_http_request& r) {
  auto answer = [&](int status, const json& body) {
    host().http_respond(r.request, status, body.dump(-1, ' ', false, json::error_handler_t::replace));
  };
  std::string_view method = to_sv(r.method), path = to_sv(r.path);
  std::string dev, sid, file;
  std::string peer = junction::util::format_addr(r.peer);
  auto refuse = [&](int status, const std::string& why) {
    host().counter_add("gb_snapshot_uploads_refused_total", 1, "code=\"" + std::to_string(status) + "\"");
    host().info("gb28181: snapshot upload " + std::string(method.substr(0, 8)) + " from " + peer + " refused " +
                std::to_string(status) + " (" + why + ")");
    answer(status, {{"error", why}});
  };
  if (!parse_snapshot_path(path, dev, sid, file)) return refuse(404, "not a snapshot upload path (/snapshot/<device>/<session>[/<file>])");
  if (method != "POST" && method != "PUT") return refuse(405, "uploads are POST or PUT");
  std::string rec;
  json sess = host().kv_get(session_key(dev, sid), rec) ? json::parse(rec, nullptr, false) : json();
  if (!sess.is_object() || sess.value("until", int64_t(0)) < wall_ms() / 1000) return refuse(404, "no open snapshot session " + sid);
  int stored = sess.value("stored", 0), max = sess.value("snap_num", 1);
  if (stored >= max) return refuse(409, "the session has its " + std::to_string(max) + " image(s)");
  std::string err, part_name;
  std::string_view img = upload_image(to_sv(r.body), to_sv(r.content_type), err, &part_name);
  if (img.empty()) return refuse(400, err.empty() ? "no image" : err);
  if (!is_jpeg(img)) return refuse(415, "not a JPEG image");
  if (file.empty()) file = valid_file_name(part_name) ? part_name : std::to_string(stored + 1) + ".jpg";
  if (host().kv_put("snap/" + dev + "/" + sid + "/" + file, img) != JN_OK) return refuse(500, "the store refused the image");
  sess["stored"] = stored + 1;
  host().kv_put(session_key(dev, sid), sess.dump());
  host().counter_add("gb_snapshots_stored_total");
  host().info("gb28181: snapshot " + file + " of " + dev + " session " + sid + " stored (" + std::to_string(img.size()) + " bytes)");
  answer(201, {{"device", dev}, {"session_id", sid}, {"file", file}, {"bytes", img.size()}});
}

bool GbPlugin::snapshot_admin(const std::string& verb, const json& b, const jn_admin_request& req) {
  if (verb != "snapshots" && verb != "snapshot") return false;
  std::string dev = b.value("id", std::string()), sid = b.value("session_id", std::string());
  if (dev.empty()) {
    reply(req, 400, {{"error", "id (the device) is required"}});
    return true;
  }
  std::string prefix = "snap/" + dev + "/" + (sid.empty() ? "" : sid + "/");
  if (verb == "snapshots") {
    json a = json::array();
    for (auto& [k, v] : host().kv_scan(prefix)) {
      std::string_view rest = std::string_view(k).substr(5 + dev.size() + 1);  // "<session>/<file>"
      size_t slash = rest.find('/');
      a.push_back({{"session_id", std::string(rest.substr(0, slash))}, {"file", std::string(rest.substr(slash + 1))}, {"bytes", v.size()}});
    }
    reply(req, 200, {{"device", dev}, {"snapshots", a}});
    return true;
  }
  std::string file = b.value("file", std::string()), img;
  if (sid.empty() || file.empty()) {
    reply(req, 400, {{"error", "session_id and file are required"}});
    return true;
  }
  if (!host().kv_get(prefix + file, img)) {
    reply(req, 404, {{"error", "no snapshot " + file + " in session " + sid}});
    return true;
  }
  reply(req, 200, {{"device", dev}, {"session_id", sid}, {"file", file}, {"bytes", img.size()},
                   {"jpeg_base64", junction::util::base64_encode(img)}});
  return true;
}

}  // namespace gb
