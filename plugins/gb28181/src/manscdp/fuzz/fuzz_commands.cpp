// fuzz_gb28181_commands: bodies fed to a CommandCenter over a fake link (filled in next commit).
#include "commands.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }
