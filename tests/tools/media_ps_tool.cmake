# sdk/media PS muxer/demuxer and PS over RTP driven over real ffmpeg streams
# (tests/integration/test_media_ps_ffmpeg.py).
if(TARGET junction_media)
  add_executable(media_ps_tool ${CMAKE_CURRENT_LIST_DIR}/media_ps_tool.cpp)
  target_link_libraries(media_ps_tool PRIVATE junction_media)
  set_target_properties(media_ps_tool PROPERTIES CXX_STANDARD 20 RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tools)
endif()
