# An sdk/webrtc endpoint (answer a browser's offer, PeerConnection over a UDP socket) for interop
# runs against headless Chromium and for benches.
if(TARGET junction_webrtc)
  add_executable(webrtc_peer_tool ${CMAKE_CURRENT_LIST_DIR}/webrtc_peer_tool.cpp)
  target_link_libraries(webrtc_peer_tool PRIVATE junction_webrtc)
  set_target_properties(webrtc_peer_tool PROPERTIES CXX_STANDARD 20 RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tools)
endif()
