// junction: the server (`junction --config FILE`) and its admin client (`junction ctl ...`).
#include "config/config.hpp"
#include "ctl/ctl.hpp"
#include "server/server.hpp"
#include "util/log.hpp"

#include <fmt/format.h>

#include <csignal>
#include <iostream>

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
      std::cout << junction::ctl::usage();
      return 0;
    } else if (ctl) rest.push_back(a);
    else {
      std::cerr << "junction: unknown argument '" << a << "'\n" << junction::ctl::usage();
      return 2;
    }
  }
  if (ctl) return junction::ctl::run(conf_path, rest);
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
