// junction: the server (`junction --config FILE`) and its admin client (`junction ctl ...`).
#include "config/config.hpp"
#include "server/server.hpp"
#include "util/log.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>

namespace {

constexpr const char* kUsage =
    "usage: junction [--config FILE]                 run the server (default conf/junction.toml)\n"
    "       junction --check [--config FILE]         validate the configuration and exit\n"
    "       junction ctl [--config FILE] COMMAND     talk to a running server's admin API\n"
    "commands: health | plugins | load NAME | reload NAME | unload NAME | routes | calls | media | metrics\n"
    "          | lookup URI | cmd PLUGIN VERB [JSON] | event TOPIC [JSON] | config-reload\n";

// A minimal blocking HTTP/1.1 client for ctl: one request, Connection: close.
int http_call(const std::string& addr, const std::string& token, const std::string& method, const std::string& path,
              const std::string& body, std::string& out_body) {
  auto colon = addr.rfind(':');
  std::string host = addr.substr(0, colon), port = addr.substr(colon + 1);
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || !res) {
    out_body = "cannot resolve " + addr;
    return -1;
  }
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
    out_body = fmt::format("cannot connect to the admin API at {}: {} (is junction running?)", addr, strerror(errno));
    freeaddrinfo(res);
    if (fd >= 0) close(fd);
    return -1;
  }
  freeaddrinfo(res);
  std::string req = fmt::format("{} {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n", method, path, addr, token);
  if (!body.empty() || method == "POST") req += fmt::format("Content-Type: application/json\r\nContent-Length: {}\r\n", body.size());
  req += "\r\n" + body;
  for (size_t sent = 0; sent < req.size();) {
    ssize_t n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string resp;
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    resp.append(buf, static_cast<size_t>(n));
    // Stop at Content-Length when the server keeps the connection open.
    auto hdr_end = resp.find("\r\n\r\n");
    if (hdr_end != std::string::npos) {
      std::string headers = resp.substr(0, hdr_end);
      for (auto& c : headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      auto cl = headers.find("content-length:");
      if (cl != std::string::npos && resp.size() >= hdr_end + 4 + std::stoul(headers.substr(cl + 15))) break;
    }
  }
  close(fd);
  int status = 0;
  if (resp.compare(0, 5, "HTTP/") == 0) status = std::atoi(resp.c_str() + resp.find(' ') + 1);
  auto hdr_end = resp.find("\r\n\r\n");
  out_body = hdr_end == std::string::npos ? resp : resp.substr(hdr_end + 4);
  return status;
}

int run_ctl(const std::string& conf_path, std::vector<std::string> args) {
  if (args.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  junction::CoreConfig conf;
  try {
    conf = junction::load_config(conf_path);
  } catch (const std::exception& e) {
    std::cerr << "junction ctl: " << e.what() << "\n";
    return 2;
  }
  std::string token = conf.admin_token;
  if (token.empty()) {
    std::ifstream in(conf.state_dir + "/admin.token");
    std::getline(in, token);
  }
  if (const char* t = std::getenv("JUNCTION_TOKEN")) token = t;
  const std::string& cmd = args[0];
  std::string method = "GET", path, body;
  auto need = [&](size_t n) {
    if (args.size() < n + 1) throw std::invalid_argument(fmt::format("'{}' needs {} argument(s)", cmd, n));
  };
  try {
    if (cmd == "health") path = "/api/v1/health";
    else if (cmd == "plugins") path = "/api/v1/plugins";
    else if (cmd == "routes") path = "/api/v1/routes";
    else if (cmd == "calls") path = "/api/v1/calls";
    else if (cmd == "media") path = "/api/v1/media";
    else if (cmd == "metrics") path = "/metrics";
    else if (cmd == "config-reload") method = "POST", path = "/api/v1/config/reload";
    else if (cmd == "lookup") need(1), path = "/api/v1/routes/lookup?uri=" + args[1];
    else if (cmd == "load") need(1), method = "POST", path = "/api/v1/plugins", body = nlohmann::json{{"name", args[1]}}.dump();
    else if (cmd == "reload") need(1), method = "POST", path = "/api/v1/plugins/" + args[1] + "/reload";
    else if (cmd == "unload") need(1), method = "POST", path = "/api/v1/plugins/" + args[1] + "/unload";
    else if (cmd == "cmd") need(2), method = "POST", path = "/api/v1/plugins/" + args[1] + "/cmd/" + args[2], body = args.size() > 3 ? args[3] : "";
    else if (cmd == "event") {
      need(1);
      method = "POST", path = "/api/v1/events";
      nlohmann::json data = args.size() > 2 ? nlohmann::json::parse(args[2], nullptr, false) : nlohmann::json::object();
      if (data.is_discarded()) throw std::invalid_argument("event data is not JSON");
      body = nlohmann::json{{"topic", args[1]}, {"data", data}}.dump();
    } else throw std::invalid_argument("unknown command '" + cmd + "'");
  } catch (const std::invalid_argument& e) {
    std::cerr << "junction ctl: " << e.what() << "\n" << kUsage;
    return 2;
  }
  std::string out;
  int status = http_call(conf.admin_listen, token, method, path, body, out);
  std::cout << out;
  if (!out.empty() && out.back() != '\n') std::cout << "\n";
  if (status < 0) return 3;
  return status >= 200 && status < 300 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string conf_path = "conf/junction.toml";
  bool check_only = false, ctl = false;
  std::vector<std::string> rest;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "--config" || a == "-c") && i + 1 < argc) conf_path = argv[++i];
    else if (a == "--check") check_only = true;
    else if (a == "ctl" && !ctl && rest.empty()) ctl = true;
    else if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (ctl) rest.push_back(a);
    else {
      std::cerr << "junction: unknown argument '" << a << "'\n" << kUsage;
      return 2;
    }
  }
  if (ctl) return run_ctl(conf_path, rest);
  std::signal(SIGPIPE, SIG_IGN);
  junction::CoreConfig conf;
  try {
    conf = junction::load_config(conf_path);
    junction::RouteTable probe;
    probe.set_static(conf.routes);
  } catch (const std::exception& e) {
    junction::log_write(JN_LOG_ERROR, "core", fmt::format("configuration refused: {}", e.what()));
    return 2;
  }
  if (check_only) {
    std::cout << "configuration OK: " << conf_path << "\n";
    return 0;
  }
  try {
    junction::Server server(std::move(conf));
    return server.run();
  } catch (const std::exception& e) {
    junction::log_write(JN_LOG_ERROR, "core", fmt::format("cannot start: {}", e.what()));
    return 1;
  }
}
