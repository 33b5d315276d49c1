// The configuration loader on arbitrary text: it must either return a config or throw
// ConfigError with a "file:line" message, never crash or throw anything else.
//
// The input is junction.toml, optionally followed by the confs of two plugins, "p" and "q",
// each after a line "#%plugin": they are written to a scratch directory (with an empty p.so and
// q.so beside them), and "@DIR@" in the main text names that directory, so a seed such as
//   [plugins]
//   dir = "@DIR@"
//   conf_dir = "@DIR@"
//   enabled = ["p", "q"]
//   #%plugin
//   listen = "127.0.0.1:7601"
// reaches the plugin conf reader (core keys, TOML to JSON with key lines, listen-address checks
// across plugins and port ranges). A plugin without its part has no conf file at all.
#include "config/config.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

// One scratch directory per process, removed at exit.
struct Scratch {
  std::string dir;
  Scratch() {
    char tmpl[] = "/tmp/fuzz_config-XXXXXX";
    if (!mkdtemp(tmpl)) std::abort();
    dir = tmpl;
    std::ofstream(dir + "/p.so");
    std::ofstream(dir + "/q.so");
  }
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};
const std::string& scratch() {
  static const Scratch s;
  return s.dir;
}

void write_conf(const std::string& name, const std::string* text) {
  std::string path = scratch() + "/" + name + ".toml";
  if (!text) {
    std::filesystem::remove(path);
    return;
  }
  std::ofstream(path, std::ios::binary | std::ios::trunc) << *text;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  static const std::string kSep = "\n#%plugin\n";
  std::string parts[3];
  int n = 0;
  for (size_t at = 0; n < 3;) {
    size_t sep = text.find(kSep, at);
    parts[n++] = text.substr(at, sep == std::string::npos ? std::string::npos : sep - at);
    if (sep == std::string::npos) break;
    at = sep + kSep.size();
  }
  const bool with_plugins = n > 1 || parts[0].find("@DIR@") != std::string::npos;
  if (with_plugins) {
    for (size_t p; (p = parts[0].find("@DIR@")) != std::string::npos;) parts[0].replace(p, 5, scratch());
    write_conf("p", n > 1 ? &parts[1] : nullptr);
    write_conf("q", n > 2 ? &parts[2] : nullptr);
  }
  try {
    junction::CoreConfig c = junction::load_config_text(parts[0], "fuzz.toml");
    for (const junction::PluginConf& pc : c.plugins) {
      if (!pc.settings.is_object()) std::abort();  // a plugin's table is always an object
      if (pc.settings.contains("library") || pc.settings.contains("log_level")) std::abort();  // the core's keys
      (void)junction::plugin_listen_addrs(pc);
    }
  } catch (const junction::ConfigError& e) {
    if (std::string_view(e.what()).find(".toml") == std::string_view::npos) std::abort();  // every message names a file
  }
  return 0;
}
