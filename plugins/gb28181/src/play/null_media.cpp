// The media side when the plugin is built without gb-media's MediaIngest implementation: every
// stream is refused with the reason, everything else (SIP, admin) works.
#include "play/media_port.hpp"

namespace gb::play {

namespace {
class NullMedia final : public PlayMedia {
 public:
  bool available() const override { return false; }
  MediaOpened open(const std::string&, const std::string&, Transport, Kind, uint32_t, const std::string&) override {
    MediaOpened o;
    o.error = "media ingest not built into this plugin (gb-media's MediaIngest)";
    return o;
  }
  bool answer(uint32_t, const Answer&, std::string& error) override {
    error = "media ingest not built";
    return false;
  }
  void close(uint32_t, const std::string&) override {}
  nlohmann::json stats(uint32_t) override { return nullptr; }
};
}  // namespace

std::unique_ptr<PlayMedia> make_play_media(junction::sdk::Host) { return std::make_unique<NullMedia>(); }

}  // namespace gb::play
