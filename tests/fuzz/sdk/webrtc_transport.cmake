# Fuzz targets of sdk/webrtc's transport side (junction_webrtc): the STUN parser with the ICE-lite
# responder above it, and DTLS record framing with a server Dtls and a Transport fed garbage.
if(TARGET junction_webrtc)
  junction_add_fuzz_target(fuzz_webrtc_stun SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_webrtc_stun.cpp
    CORPUS ${CMAKE_CURRENT_LIST_DIR}/../corpus/webrtc_stun LIBS junction_webrtc)
  junction_add_fuzz_target(fuzz_webrtc_dtls SOURCES ${CMAKE_CURRENT_LIST_DIR}/fuzz_webrtc_dtls.cpp
    CORPUS ${CMAKE_CURRENT_LIST_DIR}/../corpus/webrtc_dtls LIBS junction_webrtc)
endif()
