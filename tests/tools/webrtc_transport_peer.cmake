# sdk/webrtc Transport on a UDP socket, the far end of a real browser
# (tests/integration/test_webrtc_transport_chromium.py).
if(TARGET junction_webrtc)
  add_executable(webrtc_transport_peer ${CMAKE_CURRENT_LIST_DIR}/webrtc_transport_peer.cpp)
  target_link_libraries(webrtc_transport_peer PRIVATE junction_webrtc)
  set_target_properties(webrtc_transport_peer PROPERTIES CXX_STANDARD 20 RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tools)
endif()
