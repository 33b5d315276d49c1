#include "admin/admin_api.hpp"

#include "host/media_loop.hpp"

#include "server/server.hpp"
#include "util/log.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>

#include <cctype>

namespace junction {
namespace {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) parts.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return parts;
}

std::string query_param(const std::string& query, const std::string& key) {
  for (size_t i = 0; i < query.size();) {
    size_t amp = query.find('&', i);
    if (amp == std::string::npos) amp = query.size();
    std::string part = query.substr(i, amp - i);
    if (part.compare(0, key.size() + 1, key + "=") == 0) {
      std::string v = part.substr(key.size() + 1), out;
      for (size_t k = 0; k < v.size(); ++k) {
        if (v[k] == '%' && k + 2 < v.size() && std::isxdigit(static_cast<unsigned char>(v[k + 1])) &&
            std::isxdigit(static_cast<unsigned char>(v[k + 2]))) {
          out += static_cast<char>(std::stoi(v.substr(k + 1, 2), nullptr, 16));
          k += 2;
        } else {
          out += v[k] == '+' ? ' ' : v[k];
        }
      }
      return out;
    }
    i = amp + 1;
  }
  return {};
}

}  // namespace

bool AdminApi::start(std::string* error) {
  HttpHandlers h;
  h.on_request = [this](const HttpRequest& req) {
    try {
      handle(req);
    } catch (const std::exception& e) {
      // The control plane may throw; the client gets a 500 and the server keeps running.
      JN_LOG_ERR("admin {} {}: {}", req.method, req.path, e.what());
      this->error(req.id, 500, e.what());
    }
  };
  const std::string& addr = server_.conf().admin_listen;
  // The admin API may use the fds [limits] fd_reserve keeps free: during a connection flood on
  // the plugins' listeners, the operator must still get in.
  endpoint_ = server_.services().http.listen(addr, "", std::move(h), error, false);
  if (endpoint_ && !is_loopback_listen(addr))
    JN_LOG_WRN("admin API listens on {}, off loopback (admin.allow_remote = true): it has NO TLS, the bearer token and every "
               "answer cross the network in clear; keep it behind a firewall or a VPN", addr);
  return endpoint_ != 0;
}

void AdminApi::stop() {
  if (endpoint_) server_.services().http.close_endpoint(endpoint_);
  endpoint_ = 0;
}

void AdminApi::reply(uint64_t id, int status, const nlohmann::json& body) {
  // replace: messages quote the client's path or plugin name, which need not be UTF-8; a strict
  // dump() threw and turned a 404 into a 500 with an error line (found by fuzz_http_request).
  server_.services().http.respond(id, status, "application/json",
                                  body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

void AdminApi::error(uint64_t id, int status, const std::string& message) { reply(id, status, {{"error", message}}); }

bool AdminApi::authorized(const HttpRequest& req) const {
  const std::string& token = server_.admin_token();
  const std::string prefix = "Bearer ";
  if (token.empty() || req.authorization.size() != prefix.size() + token.size()) return false;
  if (req.authorization.compare(0, prefix.size(), prefix) != 0) return false;
  return CRYPTO_memcmp(req.authorization.data() + prefix.size(), token.data(), token.size()) == 0;  // constant time
}

void AdminApi::handle(const HttpRequest& req) {
  if (!authorized(req)) {
    server_.services().metrics.add("junction_admin_unauthorized_total", "", 1);
    error(req.id, 401, req.authorization.empty() ? "missing Authorization: Bearer <token>" : "wrong token");
    return;
  }
  auto parts = split_path(req.path);
  const std::string& m = req.method;
  PluginHost& host = server_.plugins();
  Services& svc = server_.services();
  auto body_json = [&](nlohmann::json& out) {
    out = nlohmann::json::parse(req.body.empty() ? std::string("{}") : req.body, nullptr, false);
    if (out.is_discarded() || !out.is_object()) {
      error(req.id, 400, "the body must be a JSON object");
      return false;
    }
    return true;
  };
  auto method_not_allowed = [&] { error(req.id, 405, fmt::format("{} not allowed on {}", m, req.path)); };

  if (parts.size() == 1 && parts[0] == "metrics") {
    if (m != "GET") return method_not_allowed();
    svc.http.respond(req.id, 200, "text/plain; version=0.0.4", svc.metrics.prometheus_text());
    return;
  }
  if (parts.size() < 3 || parts[0] != "api" || parts[1] != "v1") return error(req.id, 404, "no such endpoint: " + req.path);
  const std::string& what = parts[2];

  if (what == "health" && parts.size() == 3) {
    if (m != "GET") return method_not_allowed();
    return reply(req.id, 200, {{"status", "ok"}, {"uptime_ms", uv_now(svc.loop) - server_.started_ms()},
                               {"plugins", host.names().size()}, {"calls", svc.calls.active_calls()},
                               {"abi", fmt::format("{}.{}", JN_ABI_MAJOR, JN_ABI_MINOR)}});
  }
  if (what == "routes") {
    if (m != "GET") return method_not_allowed();
    if (parts.size() == 4 && parts[3] == "lookup") {
      std::string uri = query_param(req.query, "uri");
      if (uri.empty()) return error(req.id, 400, "lookup needs ?uri=");
      auto j = svc.routes.lookup_json(uri);
      if (!j) return error(req.id, 404, "nothing routes " + uri);
      return svc.http.respond(req.id, 200, "application/json", *j), void();
    }
    if (parts.size() != 3) return error(req.id, 404, "no such endpoint: " + req.path);
    return reply(req.id, 200, svc.routes.to_json());
  }
  if (what == "calls" && parts.size() == 3) {
    if (m != "GET") return method_not_allowed();
    return reply(req.id, 200, svc.calls.to_json());
  }
  if (what == "bus" && parts.size() == 3) {
    if (m != "GET") return method_not_allowed();
    return reply(req.id, 200, svc.bus.to_json());
  }
  if (what == "media" && parts.size() == 3) {
    if (m != "GET") return method_not_allowed();
    return reply(req.id, 200, svc.media ? svc.media->to_json() : nlohmann::json{{"loops", nlohmann::json::array()}});
  }
  if (what == "events" && parts.size() == 3) {
    if (m != "POST") return method_not_allowed();
    nlohmann::json b;
    if (!body_json(b)) return;
    if (!b.contains("topic") || !b["topic"].is_string() || b["topic"].get<std::string>().empty())
      return error(req.id, 400, "'topic' (string) is required");
    host.publish_event(b["topic"], b.value("data", nlohmann::json::object()).dump());
    return reply(req.id, 202, {{"published", b["topic"]}});
  }
  if (what == "config" && parts.size() == 4 && parts[3] == "reload") {
    if (m != "POST") return method_not_allowed();
    std::string why = server_.reload_config();
    if (!why.empty()) return error(req.id, 400, why);
    return reply(req.id, 200, {{"reloaded", server_.conf().path}});
  }
  if (what != "plugins") return error(req.id, 404, "no such endpoint: " + req.path);

  if (parts.size() == 3) {
    if (m == "GET") return reply(req.id, 200, host.to_json());
    if (m != "POST") return method_not_allowed();
    nlohmann::json b;
    if (!body_json(b)) return;
    if (!b.contains("name") || !b["name"].is_string()) return error(req.id, 400, "'name' (string) is required");
    std::string name = b["name"];
    if (!valid_plugin_name(name)) return error(req.id, 400, fmt::format("'{}' is not a valid plugin name", name));
    if (host.find(name)) return error(req.id, 409, fmt::format("plugin '{}' is already loaded", name));
    PluginConf pc;
    try {
      pc = load_plugin_conf(host.core_conf(), name);
      std::vector<ListenAddr> listens{{server_.conf().admin_listen, "admin.listen", "tcp"}};
      for (auto& n : host.names())
        for (auto& l : plugin_listen_addrs(host.find(n)->conf())) listens.push_back(l);
      for (auto& l : plugin_listen_addrs(pc)) listens.push_back(l);
      check_duplicate_listens(listens);
    } catch (const ConfigError& e) {
      std::string msg = e.what();
      bool missing = msg.find("missing") != std::string::npos || msg.find("not found") != std::string::npos;
      return error(req.id, missing ? 404 : 400, msg);
    }
    std::string why = host.load(pc);
    if (!why.empty()) return error(req.id, 422, why);
    return reply(req.id, 201, host.slot_json(*host.find(name)));
  }
  const std::string& name = parts[3];
  PluginSlot* slot = host.find(name);
  if (!slot) return error(req.id, 404, fmt::format("no plugin named '{}' is loaded", name));
  if (parts.size() == 4) {
    if (m != "GET") return method_not_allowed();
    return reply(req.id, 200, host.slot_json(*slot));
  }
  const std::string& action = parts[4];
  if (action == "reload" && parts.size() == 5) {
    if (m != "POST") return method_not_allowed();
    PluginConf pc;
    try {
      pc = load_plugin_conf(host.core_conf(), name);  // a reload also picks up conf changes
    } catch (const ConfigError& e) {
      return error(req.id, 400, std::string(e.what()) + " (the running instance is unchanged)");
    }
    slot->set_log_level(pc.log_level);
    uint64_t id = req.id;
    // Asynchronous: a plugin with worker jobs in flight is reloaded once they are drained.
    host.reload_async(name, &pc, [this, id, name](ReloadResult r) { reply(id, r.ok ? 200 : r.http_status, r.to_json(name)); });
    return;
  }
  if (action == "unload" && parts.size() == 5) {
    if (m != "POST") return method_not_allowed();
    uint64_t id = req.id;
    host.unload(name, [this, id, name](std::string why) {
      if (why.empty()) reply(id, 200, {{"unloaded", name}});
      else error(id, 409, why);
    });
    return;
  }
  if (action == "log_level" && parts.size() == 5) {
    if (m != "PUT" && m != "POST") return method_not_allowed();
    nlohmann::json b;
    if (!body_json(b)) return;
    int level = b.contains("level") && b["level"].is_string() ? parse_log_level(b["level"].get<std::string>()) : -1;
    if (level < 0) return error(req.id, 400, "'level' must be one of error, warn, info, debug, trace");
    slot->set_log_level(level);
    return reply(req.id, 200, {{"plugin", name}, {"log_level", b["level"]}});
  }
  if (action == "cmd" && parts.size() == 6) {
    if (m != "POST" && m != "GET") return method_not_allowed();
    if (!req.body.empty()) {
      nlohmann::json b;
      if (!body_json(b)) return;
    }
    uint64_t id = req.id;
    host.admin_command(*slot, parts[5], req.body, [this, id](int status, std::string json) {
      if (status < 100 || status > 599) status = 500;
      server_.services().http.respond(id, status, "application/json", json.empty() ? "{}" : json);
    });
    return;
  }
  error(req.id, 404, "no such endpoint: " + req.path);
}

}  // namespace junction
