# gb28181 media ingest/send (src/media/ingest.hpp): receivers on media loops, the broadcast/talk
# sender. Included by plugins/gb28181/CMakeLists.txt, which links the plugin to gb28181_media.
# A static, position-independent, hidden-visibility library that ends up inside the plugin's .so.
set(JN_GBMEDIA_DIR ${CMAKE_CURRENT_LIST_DIR})
file(GLOB JN_GBMEDIA_SOURCES CONFIGURE_DEPENDS ${JN_GBMEDIA_DIR}/*.cpp)
add_library(gb28181_media STATIC ${JN_GBMEDIA_SOURCES})
target_include_directories(gb28181_media PUBLIC ${JN_GBMEDIA_DIR})
target_link_libraries(gb28181_media PUBLIC junction_sdk junction::media)
set_target_properties(gb28181_media PROPERTIES POSITION_INDEPENDENT_CODE ON
  CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
target_compile_options(gb28181_media PRIVATE $<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CXX_COMPILER_ID:GNU>>:-fno-gnu-unique>)

if(NOT JN_FUZZ)
  file(GLOB JN_GBMEDIA_TESTS CONFIGURE_DEPENDS ${JN_GBMEDIA_DIR}/tests/*.cpp)
  if(JN_GBMEDIA_TESTS)
    add_executable(gb28181_media_test ${JN_GBMEDIA_TESTS} ${CMAKE_SOURCE_DIR}/tests/unit/doctest_main.cpp)
    target_link_libraries(gb28181_media_test PRIVATE gb28181_media doctest::doctest)
    target_include_directories(gb28181_media_test PRIVATE ${CMAKE_SOURCE_DIR}/tests/unit)
    add_test(NAME gb28181.unit_media COMMAND gb28181_media_test)
  endif()
endif()
