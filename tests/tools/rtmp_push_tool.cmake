# sdk/rtmp (junction_rtmp): the push tool the nginx-rtmp integration test runs
# (tests/integration/test_rtmp_nginx.py), and the library linked into the test_rtmp_* unit tests
# (tests/CMakeLists.txt links only sip and media into unit tests; linking here keeps rtmp's build
# rules in rtmp's own files).
if(TARGET junction_rtmp)
  add_executable(rtmp_push_tool ${CMAKE_CURRENT_LIST_DIR}/rtmp_push_tool.cpp)
  target_link_libraries(rtmp_push_tool PRIVATE junction_rtmp)
  set_target_properties(rtmp_push_tool PROPERTIES CXX_STANDARD 20 RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tools)
  file(GLOB jn_rtmp_unit_tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/../unit/test_rtmp_*.cpp)
  foreach(src ${jn_rtmp_unit_tests})
    get_filename_component(name ${src} NAME_WE)
    if(TARGET ${name})
      target_link_libraries(${name} PRIVATE junction_rtmp)
    endif()
  endforeach()
  if(TARGET test_rtmp_flv_reader)  # ffmpeg-made FLV + what ffmpeg extracts from it (make.sh)
    target_compile_definitions(test_rtmp_flv_reader PRIVATE JN_FLV_TEST_DATA="${CMAKE_CURRENT_LIST_DIR}/../unit/data/flv")
  endif()
endif()
