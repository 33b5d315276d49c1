# The sdk/media RTP packetizers driven over real ffmpeg streams (tests/integration/test_media_rtp_ffmpeg.py).
if(TARGET junction_media)
  add_executable(media_rtp_tool ${CMAKE_CURRENT_LIST_DIR}/media_rtp_tool.cpp)
  target_link_libraries(media_rtp_tool PRIVATE junction_media)
  set_target_properties(media_rtp_tool PROPERTIES CXX_STANDARD 20 RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tools)
endif()
