// The configuration loader on arbitrary text: it must either return a config or throw
// ConfigError with a "file:line" message, never crash or throw anything else.
#include "config/config.hpp"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    junction::load_config_text(text, "fuzz.toml");
  } catch (const junction::ConfigError& e) {
    if (std::string_view(e.what()).substr(0, 9) != "fuzz.toml" &&
        std::string_view(e.what()).find(".toml") == std::string_view::npos)
      std::abort();  // every message names a file
  }
  return 0;
}
