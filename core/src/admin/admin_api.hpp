// The admin API: JSON over HTTP on admin.listen (127.0.0.1:7600 by default), served by the
// core's HttpServer. Every request needs "Authorization: Bearer <token>". Errors are JSON
// bodies {"error": "..."} with a 4xx/5xx status; nothing a client sends can stop the server.
#pragma once

#include "http/http_server.hpp"

#include <nlohmann/json.hpp>

#include <string>

namespace junction {

class Server;

class AdminApi {
 public:
  explicit AdminApi(Server& server) : server_(server) {}
  bool start(std::string* error);
  void stop();

 private:
  void handle(const HttpRequest& req);
  void reply(uint64_t id, int status, const nlohmann::json& body);
  void error(uint64_t id, int status, const std::string& message);
  bool authorized(const HttpRequest& req) const;

  Server& server_;
  uint64_t endpoint_ = 0;
};

}  // namespace junction
